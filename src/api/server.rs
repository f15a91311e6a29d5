//! The server's address: an origin, checked before any credential is sent to it.

use reqwest::Url;
use std::fmt;
use std::net::IpAddr;

/// An ELITEA server origin such as `https://next.elitea.ai`, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerUrl(Url);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerUrlError {
    #[error("`{0}` is not a server URL; give an origin such as https://next.elitea.ai")]
    Malformed(String),
    #[error("`{0}` uses {1}; the server URL must start with https:// (or http:// for this machine)")]
    Scheme(String, String),
    #[error(
        "`{0}` is plain http to another machine, which would send the credential unencrypted; use https://, or pass --insecure-http if you really mean it"
    )]
    InsecureHttp(String),
    #[error("`{0}` ends in an API path; give the origin only, such as {1}")]
    ApiPath(String, String),
    #[error("`{0}` carries a user name, password, query or fragment; give the origin only")]
    Extra(String),
}

impl ServerUrl {
    /// Parses and checks a server URL. Plain `http://` is allowed only for loopback addresses
    /// unless `allow_insecure_http` is set.
    pub fn parse(input: &str, allow_insecure_http: bool) -> Result<ServerUrl, ServerUrlError> {
        let trimmed = input.trim();
        let url = Url::parse(trimmed).map_err(|_| ServerUrlError::Malformed(trimmed.to_string()))?;
        if url.host_str().is_none() {
            return Err(ServerUrlError::Malformed(trimmed.to_string()));
        }
        if !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(ServerUrlError::Extra(redact_userinfo(&url)));
        }
        match url.scheme() {
            "https" => {}
            "http" if allow_insecure_http || is_loopback(&url) => {}
            "http" => return Err(ServerUrlError::InsecureHttp(trimmed.to_string())),
            other => {
                return Err(ServerUrlError::Scheme(trimmed.to_string(), other.to_string()));
            }
        }
        let path = url.path().trim_end_matches('/').to_string();
        if path.ends_with("/api/v2") || path.ends_with("/api/v1") || path.contains("/api/v2/") {
            let origin = url.origin().ascii_serialization();
            return Err(ServerUrlError::ApiPath(trimmed.to_string(), origin));
        }
        let mut url = url;
        url.set_path(&path);
        Ok(ServerUrl(url))
    }

    /// The URL of an API path such as `auth/token/`.
    pub(crate) fn api(&self, path: &str) -> Url {
        let mut url = self.0.clone();
        let base = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{base}/api/v2/{path}"));
        url
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }

    /// `http://`: no TLS, so no certificates to load.
    pub fn is_plain_http(&self) -> bool {
        self.0.scheme() == "http"
    }

    pub fn is_loopback(&self) -> bool {
        is_loopback(&self.0)
    }
}

fn redact_userinfo(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost") || name.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_origins_and_refuses_the_rest() {
        let ok = [
            ("https://next.elitea.ai", false, "https://next.elitea.ai"),
            ("https://next.elitea.ai/", false, "https://next.elitea.ai"),
            ("http://127.0.0.1:8080", false, "http://127.0.0.1:8080"),
            ("http://localhost:3000/", false, "http://localhost:3000"),
            ("http://[::1]:9000", false, "http://[::1]:9000"),
            ("http://elitea.internal", true, "http://elitea.internal"),
            (
                "https://corp.example/elitea",
                false,
                "https://corp.example/elitea",
            ),
        ];
        for (input, insecure, expected) in ok {
            let url = ServerUrl::parse(input, insecure).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(url.as_str(), expected);
        }
        let bad = [
            ("next.elitea.ai", "not a server URL"),
            ("http://next.elitea.ai", "--insecure-http"),
            ("ftp://next.elitea.ai", "must start with https://"),
            (
                "https://next.elitea.ai/api/v2",
                "give the origin only, such as https://next.elitea.ai",
            ),
            ("https://next.elitea.ai/api/v1/", "give the origin only"),
            ("https://me:pw@next.elitea.ai", "user name, password"),
            ("https://next.elitea.ai/?x=1", "query"),
        ];
        for (input, message) in bad {
            let err = ServerUrl::parse(input, false).expect_err(input).to_string();
            assert!(err.contains(message), "{input}: {err}");
            assert!(!err.contains("pw@"), "{err}");
        }
    }

    #[test]
    fn api_paths_join_the_base() {
        let url = ServerUrl::parse("https://corp.example/elitea/", false).unwrap();
        assert_eq!(
            url.api("auth/token/").as_str(),
            "https://corp.example/elitea/api/v2/auth/token/"
        );
        let url = ServerUrl::parse("http://127.0.0.1:1", false).unwrap();
        assert_eq!(
            url.api("social/author/").as_str(),
            "http://127.0.0.1:1/api/v2/social/author/"
        );
    }
}
