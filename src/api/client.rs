//! Calls to the ELITEA API over reqwest (rustls), with timeouts and retries for reads.

use super::error::{ApiError, ErrorKind, json_problem, sanitize_server_text};
use super::list::ListReader;
use super::server::ServerUrl;
use super::wire::{Author, Models, WireError, WireToken};
use crate::domain::{Expiration, Secret, Token};
use backon::{ExponentialBuilder, Retryable};
use compact_str::CompactString;
use reqwest::{Method, StatusCode, header};
use serde::de::DeserializeOwned;
use std::time::Duration;
use uuid::Uuid;

/// The list of the signed-in user's tokens.
const LIST_PATH: &str = "auth/token/";

/// How patient the client is.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time for a whole request, answer included.
    pub request_timeout: Duration,
    /// Extra attempts for reads (GET) after a transient failure; writes are never retried.
    pub read_retries: usize,
    /// First pause between attempts; it doubles each time.
    pub retry_delay: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            read_retries: 2,
            retry_delay: Duration::from_millis(200),
        }
    }
}

/// A token just created, with the full value the server shows only this once.
#[derive(Debug, Clone)]
pub struct CreatedToken {
    pub token: Token,
    pub value: Secret,
}

/// A client for one server and one credential.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    server: ServerUrl,
    credential: Secret,
    options: ClientOptions,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.server.as_str())
            .field("credential", &self.credential)
            .finish()
    }
}

impl Client {
    pub fn new(server: ServerUrl, credential: Secret, options: ClientOptions) -> Result<Client, ApiError> {
        // reqwest is built without a default crypto provider so that only ring is compiled in.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder();
        if server.is_plain_http() {
            // No TLS to verify (a sandbox, a server on this machine): skip reading and decoding
            // the system's root certificates, about a millisecond per client. Redirects are
            // refused below, so no request can move on to an https:// host.
            builder = builder.tls_certs_only([]);
        }
        let http = builder
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            // A redirect could carry the credential elsewhere; report it instead.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("elitea-tokens/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::new(ErrorKind::Protocol, format!("cannot set up the HTTP client: {e}")))?;
        Ok(Client {
            http,
            server: server.clone(),
            credential,
            options,
        })
    }

    pub fn server(&self) -> &ServerUrl {
        &self.server
    }

    pub fn credential(&self) -> &Secret {
        &self.credential
    }

    /// The same server and options with another credential (to check a new token).
    pub fn with_credential(&self, credential: Secret) -> Client {
        Client {
            credential,
            ..self.clone()
        }
    }

    /// Every token of the signed-in user (masked), parsed as the body arrives.
    pub async fn list_tokens(&self) -> Result<Vec<Token>, ApiError> {
        self.retrying(LIST_PATH, || async {
            let mut body = self.list_answer_once().await?;
            let mut list = body.reader();
            while let Some(piece) = body.piece().await? {
                list.push(&piece)?;
            }
            list.finish()
        })
        .await
    }

    /// The answer to a GET of the list, checked, with its body still to read: for a caller
    /// that parses the body elsewhere (see `daemon::prefetch`). Retried until an answer comes,
    /// as [`Client::list_tokens`] is; the body is not read again if it is cut off.
    pub async fn list_answer(&self) -> Result<ListAnswer, ApiError> {
        self.retrying(LIST_PATH, || self.list_answer_once()).await
    }

    async fn list_answer_once(&self) -> Result<ListAnswer, ApiError> {
        let response = self.send(Method::GET, LIST_PATH, None).await?;
        let status = response.status().as_u16();
        if content_type(&response).contains("html") {
            return Err(html_instead(&self.server, status));
        }
        Ok(ListAnswer {
            server: self.server.clone(),
            status,
            response,
        })
    }

    /// One token by uuid (masked).
    pub async fn get_token(&self, uuid: Uuid) -> Result<Token, ApiError> {
        let token: WireToken<CompactString> = self.read(&format!("auth/token/{uuid}")).await?;
        Ok(token.into_token())
    }

    /// Creates a token. Never retried: a lost answer could otherwise make two tokens.
    pub async fn create_token(&self, name: &str, expiration: Expiration) -> Result<CreatedToken, ApiError> {
        let body = serde_json::json!({ "name": name, "expires": expiration.to_wire() });
        let response = self.send(Method::POST, "auth/token/", Some(&body)).await?;
        let created: WireToken<Secret> = decode(&self.server, response).await?;
        let (token, value) = created.split();
        Ok(CreatedToken { token, value })
    }

    /// Deletes a token. Never retried blindly; the caller can check with a list.
    pub async fn delete_token(&self, uuid: Uuid) -> Result<(), ApiError> {
        let response = self
            .send(Method::DELETE, &format!("auth/token/{uuid}"), None)
            .await?;
        drop(response);
        Ok(())
    }

    /// The signed-in user: the origin for IDE settings and the personal project.
    pub async fn author(&self) -> Result<Author, ApiError> {
        self.read("social/author/").await
    }

    /// The models of a project, shared ones included.
    pub async fn models(&self, project_id: i64) -> Result<Models, ApiError> {
        self.read(&format!("configurations/models/{project_id}?include_shared=true"))
            .await
    }

    /// A GET, retried with backoff while the failure is transient.
    async fn read<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.retrying(path, || async {
            let response = self.send(Method::GET, path, None).await?;
            decode(&self.server, response).await
        })
        .await
    }

    /// `attempt`, a read of `path`, made again with backoff while it fails transiently.
    async fn retrying<T, Attempt, Made>(&self, path: &str, attempt: Attempt) -> Result<T, ApiError>
    where
        Attempt: FnMut() -> Made,
        Made: Future<Output = Result<T, ApiError>>,
    {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.options.retry_delay)
            .with_max_delay(self.options.retry_delay * 8)
            .with_max_times(self.options.read_retries)
            .with_jitter();
        attempt
            .retry(backoff)
            .when(ApiError::is_transient)
            .notify(|err, pause| tracing::debug!(kind = %err.kind, ?pause, "retrying GET {path}"))
            .await
    }

    /// Sends one request and turns every non-success answer into an [`ApiError`].
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<reqwest::Response, ApiError> {
        let (path, query) = path.split_once('?').map_or((path, None), |(p, q)| (p, Some(q)));
        let mut url = self.server.api(path);
        url.set_query(query);
        let mut request = self
            .http
            .request(method.clone(), url)
            .bearer_auth(self.credential.expose())
            .header(header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        tracing::debug!(%method, path, "request");
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(&self.server, &e))?;
        let status = response.status();
        tracing::debug!(%method, path, status = status.as_u16(), "response");
        if status.is_success() {
            return Ok(response);
        }
        Err(status_error(&self.server, response).await)
    }
}

/// Reads a success body as JSON; anything else is a protocol error.
async fn decode<T: DeserializeOwned>(server: &ServerUrl, response: reqwest::Response) -> Result<T, ApiError> {
    let status = response.status().as_u16();
    let is_html = content_type(&response).contains("html");
    let bytes = body(server, response).await?;
    if is_html || bytes.trim_ascii_start().starts_with(b"<") {
        return Err(html_instead(server, status));
    }
    // Checked as UTF-8 once, as a whole: read from a `&str`, serde_json need not check each
    // string it meets.
    let text = std::str::from_utf8(&bytes).map_err(|e| not_the_api(server, status, &e))?;
    serde_json::from_str(text).map_err(|e| not_the_api(server, status, &json_problem(&e)))
}

/// An answer with a page for people where the API's JSON belongs.
pub(super) fn html_instead(server: &ServerUrl, status: u16) -> ApiError {
    ApiError::new(
        ErrorKind::Protocol,
        format!("{server} answered with an HTML page instead of the ELITEA API; is the server URL right, or is a proxy or sign-in page in the way?"),
    )
    .with_status(status)
}

/// An answer that is not the API's JSON. `problem` must not quote the body.
pub(super) fn not_the_api(server: &ServerUrl, status: u16, problem: &dyn std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorKind::Protocol,
        format!("{server} sent an answer that is not what the ELITEA API returns ({problem}); the connection may have been cut, or a proxy changed it"),
    )
    .with_status(status)
}

/// The answer to a GET of the list, its body still to come (see [`Client::list_answer`]).
pub struct ListAnswer {
    server: ServerUrl,
    status: u16,
    response: reqwest::Response,
}

impl ListAnswer {
    /// A reader for this answer's body, sized by its `Content-Length`.
    pub fn reader(&self) -> ListReader {
        ListReader::new(&self.server, self.status, self.response.content_length())
    }

    /// A reader for the part of this answer's body (`length` bytes in all) that follows the
    /// `,` at `comma`, found by [`super::list::item_boundary`].
    pub fn reader_for_the_rest(&self, comma: u64, length: u64) -> ListReader {
        ListReader::for_the_rest(&self.server, self.status, comma, length)
    }

    /// The next piece of the body as it arrives; `None` at its end.
    pub async fn piece(&mut self) -> Result<Option<bytes::Bytes>, ApiError> {
        self.response
            .chunk()
            .await
            .map_err(|e| transport_error(&self.server, &e))
    }
}

/// The largest body `Content-Length` sizes anything for up front (a buffer for the body, or the
/// list `ListReader` fills); beyond it, it grows as the body arrives, so a wrong header costs no
/// more than this.
pub(super) const PRESIZE_AT_MOST: u64 = 16 * 1024 * 1024;

/// The whole body, in one buffer sized by `Content-Length` and filled as the chunks arrive.
/// reqwest's `bytes()` keeps every chunk until the end and then copies them all into one more
/// buffer: for a large answer, twice its size in fresh pages, each a page fault on first touch.
/// (The token list, the one large answer, is parsed piece by piece instead: `ListReader`.)
async fn body(server: &ServerUrl, mut response: reqwest::Response) -> Result<Vec<u8>, ApiError> {
    let expected = response.content_length().unwrap_or(0).min(PRESIZE_AT_MOST);
    let mut body = Vec::with_capacity(expected as usize);
    while let Some(chunk) = response.chunk().await.map_err(|e| transport_error(server, &e))? {
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Names the cause of a request that got no answer.
fn transport_error(server: &ServerUrl, error: &reqwest::Error) -> ApiError {
    let cause = if error.is_timeout() {
        "the request timed out".to_string()
    } else if error.is_connect() {
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
        let mut deepest = String::from("the connection failed");
        while let Some(err) = source {
            deepest = err.to_string();
            source = err.source();
        }
        format!("cannot connect ({deepest})")
    } else if error.is_body() || error.is_decode() {
        "the connection closed before the answer was complete".to_string()
    } else {
        "the connection failed before an answer arrived".to_string()
    };
    ApiError::new(
        ErrorKind::Unreachable,
        format!("could not reach {server}: {cause}"),
    )
}

/// Maps a non-success answer to a typed error, as the contract's error table says.
async fn status_error(server: &ServerUrl, response: reqwest::Response) -> ApiError {
    let status = response.status();
    let is_html = content_type(&response).contains("html");
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = response.text().await.unwrap_or_default();
    let server_message = serde_json::from_str::<WireError>(&text)
        .map(|e| sanitize_server_text(&e.error))
        .ok();
    let code = status.as_u16();
    let error = match status {
        StatusCode::UNAUTHORIZED => ApiError::new(
            ErrorKind::CredentialRejected,
            format!(
                "{server} rejected the credential (HTTP 401); it is missing, expired, deleted or mistyped"
            ),
        ),
        // Another user's token: the server answers 403 with a JSON `null` body.
        StatusCode::FORBIDDEN if text.trim() == "null" => ApiError::new(
            ErrorKind::NotFound,
            format!("{server} says this token belongs to another user"),
        ),
        StatusCode::FORBIDDEN => ApiError::new(
            ErrorKind::CredentialRejected,
            format!(
                "{server} rejected the credential (HTTP 403 Access Denied); it is missing, expired, deleted or mistyped"
            ),
        ),
        StatusCode::BAD_REQUEST => match server_message {
            Some(message) if message.starts_with("token with uid") && message.ends_with("not found") => {
                ApiError::new(ErrorKind::NotFound, format!("{server}: {message}"))
            }
            Some(message) => ApiError::new(
                ErrorKind::InvalidInput,
                format!("{server} refused the request: {message}"),
            ),
            None if is_html => ApiError::new(
                ErrorKind::Protocol,
                format!("{server} answered HTTP 400 with an HTML page; is a proxy in the way?"),
            ),
            None => ApiError::new(
                ErrorKind::InvalidInput,
                format!("{server} refused the request: {}", sanitize_server_text(&text)),
            ),
        },
        s if s.is_server_error() => {
            let detail = match (&server_message, is_html) {
                (Some(message), _) => format!(": {message}"),
                (None, true) => " (an HTML error page, probably from a proxy or gateway)".to_string(),
                (None, false) if !text.trim().is_empty() => {
                    format!(": {}", sanitize_server_text(&text))
                }
                (None, false) => String::new(),
            };
            ApiError::new(
                ErrorKind::ServerError,
                format!("{server} failed with HTTP {code}{detail}; try again later"),
            )
        }
        s if s.is_redirection() => ApiError::new(
            ErrorKind::Protocol,
            format!(
                "{server} redirects (HTTP {code}) to {}; use the address it redirects to as the server URL",
                location
                    .as_deref()
                    .map(sanitize_server_text)
                    .unwrap_or_else(|| "another address".into())
            ),
        ),
        StatusCode::NOT_FOUND => ApiError::new(
            ErrorKind::Protocol,
            format!("{server} has no ELITEA API at /api/v2 (HTTP 404); is this an ELITEA server?"),
        ),
        _ => ApiError::new(
            ErrorKind::Protocol,
            format!("{server} answered HTTP {code}, which the ELITEA API does not use here"),
        ),
    };
    error.with_status(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_https_client_can_be_built_and_debug_hides_the_credential() {
        let server = ServerUrl::parse("https://next.elitea.ai", false).unwrap();
        let client = Client::new(
            server,
            Secret::new("credential-value-WXYZ"),
            ClientOptions::default(),
        )
        .unwrap();
        let shown = format!("{client:?}");
        assert!(
            shown.contains("...WXYZ") && !shown.contains("credential-value"),
            "{shown}"
        );
    }

    /// Answers read whole and checked: what is not JSON, or not UTF-8, is a protocol error that
    /// quotes none of the body.
    #[tokio::test]
    async fn answers_are_read_whole_and_checked() {
        let server = ServerUrl::parse("https://next.elitea.ai", false).unwrap();
        let answer = |body: &[u8]| {
            reqwest::Response::from(http::Response::builder().status(200).body(body.to_vec()).unwrap())
        };
        let cases: [(&[u8], Result<&str, &str>); 5] = [
            (br#"{"name": "laptop"}"#, Ok("laptop")),
            (
                br#"{"name": "laptop", "id": "secret-value"}"#,
                Err("invalid type: string"),
            ),
            (b"{\"name\": \"caf\xc3\xa9\"}", Ok("caf\u{e9}")),
            (b"{\"name\": \"secret-\xff\"}", Err("invalid utf-8")),
            (br#"{"name": "secret-"#, Err("EOF while parsing")),
        ];
        for (body, expected) in cases {
            #[derive(serde::Deserialize, Debug)]
            struct Named {
                name: String,
                #[serde(default)]
                #[allow(dead_code)]
                id: Option<i64>,
            }
            let read = decode::<Named>(&server, answer(body)).await;
            match (read, expected) {
                (Ok(named), Ok(name)) => assert_eq!(named.name, name),
                (Err(e), Err(cause)) => {
                    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
                    assert!(e.message.contains(cause), "{e}");
                    assert!(!e.message.contains("secret"), "{e}");
                }
                (read, expected) => panic!("{read:?} for {expected:?}"),
            }
        }
    }
}
