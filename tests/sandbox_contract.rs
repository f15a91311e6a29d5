//! The sandbox against the ELITEA wire contract (`elitea-api.md`), over real loopback HTTP.

mod common;

use std::str::FromStr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use elitea_tokens::sandbox::{DbLocation, Failure, FaultRule, Route, Sandbox, SandboxError, SandboxOptions};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const JWT_PREFIX: &str = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.";

// ---------------------------------------------------------------------------------------------
// Harness

struct Env {
    sb: Sandbox,
    http: reqwest::Client,
}

/// What came back: status, content type, raw body.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    content_type: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

async fn start() -> Env {
    start_with(SandboxOptions::default()).await
}

async fn start_with(opts: SandboxOptions) -> Env {
    let sb = Sandbox::start(opts).await.expect("sandbox starts");
    Env { sb, http: client() }
}

fn client() -> reqwest::Client {
    // reqwest 0.13 with `rustls-no-provider` refuses to build a client, even for plain http,
    // until a crypto provider is installed; a second install fails harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

fn no_cache() -> SandboxOptions {
    SandboxOptions {
        auth_cache: Duration::ZERO,
        ..SandboxOptions::default()
    }
}

impl Env {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sb.url())
    }

    /// A request with the bootstrap token.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let token = self.sb.bootstrap_token().to_owned();
        self.call_as(Some(&format!("Bearer {token}")), method, path, body)
            .await
    }

    /// A request with an explicit `Authorization` header value (or none).
    async fn call_as(
        &self,
        authorization: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.http.request(method, self.url(path));
        if let Some(auth) = authorization {
            req = req.header("authorization", auth);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request answered");
        reply(resp).await
    }

    async fn create(&self, body: Value) -> Value {
        let r = self.call(Method::POST, "/api/v2/auth/token/", Some(body)).await;
        assert_eq!(r.status, StatusCode::OK, "create: {}", r.body);
        r.json()
    }

    async fn list(&self) -> Vec<Value> {
        let r = self.call(Method::GET, "/api/v2/auth/token/", None).await;
        assert_eq!(r.status, StatusCode::OK, "list: {}", r.body);
        match r.json() {
            Value::Array(items) => items,
            other => panic!("list is not a bare array: {other}"),
        }
    }

    /// Whether `token` is accepted right now (list answers 200).
    async fn accepted(&self, token: &str) -> bool {
        let r = self
            .call_as(
                Some(&format!("Bearer {token}")),
                Method::GET,
                "/api/v2/auth/token/",
                None,
            )
            .await;
        match r.status {
            StatusCode::OK => true,
            StatusCode::FORBIDDEN => {
                assert_access_denied(&r);
                false
            }
            other => panic!("unexpected {other}: {}", r.body),
        }
    }

    async fn control(&self, method: Method, path: &str, body: Value) -> Reply {
        let resp = self
            .http
            .request(method, self.url(path))
            .json(&body)
            .send()
            .await
            .expect("control API answers");
        reply(resp).await
    }

    async fn other_user_token(&self) -> String {
        let r = self
            .control(Method::POST, "/_sandbox/credential", json!({"user": "other"}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.json()["token"].as_str().expect("token").to_owned()
    }
}

async fn reply(resp: reqwest::Response) -> Reply {
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = resp.text().await.expect("body");
    Reply {
        status,
        content_type,
        body,
    }
}

fn assert_access_denied(r: &Reply) {
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.content_type, "text/plain");
    assert_eq!(r.body, "Access Denied");
}

fn assert_jwt_shape(token: &str) {
    // The VS Code extension's pattern: ^[A-Za-z0-9-_]+\.[A-Za-z0-9-_]+\.[A-Za-z0-9-_]{86}$
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    for part in &parts {
        assert!(!part.is_empty());
        assert!(
            part.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "bad characters in {part}"
        );
    }
    assert_eq!(parts[2].len(), 86);
    assert!(token.starts_with(JWT_PREFIX));
}

fn claims(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("payload");
    String::from_utf8(URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("utf8")
}

fn rfc1123(value: &Value) -> DateTime<Utc> {
    let s = value.as_str().expect("expires is a string");
    assert!(s.ends_with(" GMT"), "{s}");
    let parsed = DateTime::parse_from_rfc2822(s).expect("RFC 1123 date");
    // Exactly the Flask form, e.g. "Thu, 03 Sep 2026 17:50:43 GMT".
    assert_eq!(parsed.format("%a, %d %b %Y %H:%M:%S GMT").to_string(), s);
    parsed.with_timezone(&Utc)
}

const TOKEN_KEYS: [&str; 6] = ["expires", "id", "name", "token", "user_id", "uuid"];

fn assert_token_object(v: &Value) {
    let obj = v.as_object().expect("token object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, TOKEN_KEYS);
    let uuid = v["uuid"].as_str().expect("uuid");
    let parsed = uuid::Uuid::parse_str(uuid).expect("uuid parses");
    assert_eq!(parsed.get_version_num(), 4);
    assert!(v["id"].is_i64());
    assert_eq!(v["user_id"], 3);
}

// ---------------------------------------------------------------------------------------------
// Token endpoints

#[tokio::test]
async fn crud_works_with_and_without_trailing_slash() {
    let env = start().await;
    for slash in ["", "/"] {
        let created = env
            .call(
                Method::POST,
                &format!("/api/v2/auth/token{slash}"),
                Some(json!({"name": format!("crud{slash}"), "expires": null})),
            )
            .await;
        assert_eq!(created.status, StatusCode::OK, "{}", created.body);
        let created = created.json();
        assert_token_object(&created);
        let uuid = created["uuid"].as_str().expect("uuid");

        let list = env
            .call(Method::GET, &format!("/api/v2/auth/token{slash}"), None)
            .await;
        assert_eq!(list.status, StatusCode::OK);
        assert!(
            list.json()
                .as_array()
                .expect("array")
                .iter()
                .any(|t| t["uuid"] == uuid)
        );

        let one = env
            .call(Method::GET, &format!("/api/v2/auth/token/{uuid}{slash}"), None)
            .await;
        assert_eq!(one.status, StatusCode::OK);
        assert_eq!(one.json()["name"], format!("crud{slash}"));

        let deleted = env
            .call(Method::DELETE, &format!("/api/v2/auth/token/{uuid}{slash}"), None)
            .await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);
        assert_eq!(deleted.body, "");

        let gone = env
            .call(Method::GET, &format!("/api/v2/auth/token/{uuid}{slash}"), None)
            .await;
        assert_eq!(gone.status, StatusCode::BAD_REQUEST);
    }
    env.sb.shutdown().await;
}

#[tokio::test]
async fn list_and_get_mask_all_but_the_last_seven_characters() {
    let env = start().await;
    let created = env.create(json!({"name": "masked"})).await;
    let full = created["token"].as_str().expect("token").to_owned();
    let masked = format!("...{}", &full[full.len() - 7..]);

    let listed = env.list().await;
    let entry = listed
        .iter()
        .find(|t| t["uuid"] == created["uuid"])
        .expect("listed");
    assert_eq!(entry["token"], masked);
    assert_token_object(entry);

    let one = env
        .call(
            Method::GET,
            &format!(
                "/api/v2/auth/token/{}",
                created["uuid"].as_str().unwrap_or_default()
            ),
            None,
        )
        .await
        .json();
    assert_eq!(one["token"], masked);
    // Everything else is identical between create, list and get.
    for key in ["expires", "id", "name", "user_id", "uuid"] {
        assert_eq!(one[key], created[key], "{key}");
        assert_eq!(entry[key], created[key], "{key}");
    }
    // Every listed value is masked, including the bootstrap token.
    for t in &listed {
        let value = t["token"].as_str().expect("token");
        assert!(value.starts_with("...") && value.len() == 10, "{value}");
    }
    env.sb.shutdown().await;
}

#[tokio::test]
async fn created_tokens_are_hs512_jwts_of_the_real_shape() {
    let env = start().await;
    for (body, len) in [
        (
            json!({"name": "with", "expires": {"measure": "days", "value": 30}}),
            226,
        ),
        (json!({"name": "without", "expires": null}), 207),
        (json!({"name": "absent"}), 207),
    ] {
        let created = env.create(body).await;
        let token = created["token"].as_str().expect("token");
        assert_jwt_shape(token);
        assert_eq!(token.len(), len, "{token}");
        let header = URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap_or_default())
            .expect("header");
        assert_eq!(header, br#"{"alg":"HS512","typ":"JWT"}"#);

        let uuid = created["uuid"].as_str().expect("uuid");
        let expected = match created["expires"].as_str() {
            Some(_) => {
                let at = rfc1123(&created["expires"]);
                format!(
                    r#"{{"uuid":"{uuid}","expires":"{}"}}"#,
                    at.format("%Y-%m-%dT%H:%M")
                )
            }
            None => format!(r#"{{"uuid":"{uuid}","expires":null}}"#),
        };
        assert_eq!(claims(token), expected);
        // And it authenticates.
        assert!(env.accepted(token).await);
    }
    assert_jwt_shape(env.sb.bootstrap_token());
    assert_eq!(env.sb.bootstrap_token().len(), 207);
    env.sb.shutdown().await;
}

#[tokio::test]
async fn expiry_is_computed_server_side_as_an_rfc1123_date() {
    let env = start().await;
    for (measure, value, seconds) in [
        ("days", 30, 30 * 86_400),
        ("weeks", 2, 14 * 86_400),
        ("hours", 5, 5 * 3_600),
        ("minutes", 12, 12 * 60),
        ("seconds", 90, 90),
    ] {
        let before = Utc::now().timestamp();
        let created = env
            .create(json!({"name": measure, "expires": {"measure": measure, "value": value}}))
            .await;
        let after = Utc::now().timestamp();
        let at = rfc1123(&created["expires"]).timestamp();
        assert!(
            (before + seconds..=after + seconds).contains(&at),
            "{measure}: {at} not in {}..={}",
            before + seconds,
            after + seconds
        );
    }
    let never = env.create(json!({"name": "never", "expires": null})).await;
    assert_eq!(never["expires"], Value::Null);
    let bootstrap = env
        .list()
        .await
        .into_iter()
        .find(|t| t["name"] == "sandbox-bootstrap")
        .expect("bootstrap token is listed");
    assert_eq!(bootstrap["expires"], Value::Null);
    env.sb.shutdown().await;
}

#[tokio::test]
async fn create_validation_matches_the_backend() {
    let env = start().await;
    let bad = |message: &str| json!({ "error": message });
    let measures = "expires measure be in {'days', 'weeks', 'hours', 'minutes', 'seconds'}";
    let cases: Vec<(Value, StatusCode, Value)> = vec![
        (json!({}), StatusCode::BAD_REQUEST, bad("Name is required")),
        (
            json!({"name": ""}),
            StatusCode::BAD_REQUEST,
            bad("Name is required"),
        ),
        (
            json!({"name": null}),
            StatusCode::BAD_REQUEST,
            bad("Name is required"),
        ),
        (
            json!({"expires": {"measure": "days", "value": 1}}),
            StatusCode::BAD_REQUEST,
            bad("Name is required"),
        ),
        (
            json!({"name": "elitea-system"}),
            StatusCode::BAD_REQUEST,
            bad(r#"Name "elitea-system" is reserved"#),
        ),
        (
            json!({"name": "a", "expires": {"value": 1}}),
            StatusCode::BAD_REQUEST,
            bad(r#"expires must have "measure" key"#),
        ),
        (
            json!({"name": "a", "expires": {}}),
            StatusCode::BAD_REQUEST,
            bad(r#"expires must have "measure" key"#),
        ),
        (
            json!({"name": "a", "expires": {"measure": "months", "value": 1}}),
            StatusCode::BAD_REQUEST,
            bad(measures),
        ),
        (
            json!({"name": "a", "expires": {"measure": "Days", "value": 1}}),
            StatusCode::BAD_REQUEST,
            bad(measures),
        ),
        (
            json!({"name": "a", "expires": {"measure": "days"}}),
            StatusCode::BAD_REQUEST,
            bad(r#"expires must have "value" key"#),
        ),
        (
            json!({"name": "a", "expires": {"measure": "days", "value": "30"}}),
            StatusCode::BAD_REQUEST,
            bad("expires must be int, got str"),
        ),
        (
            json!({"name": "a", "expires": {"measure": "days", "value": 1.5}}),
            StatusCode::BAD_REQUEST,
            bad("expires must be int, got float"),
        ),
        (
            json!({"name": "a", "expires": {"measure": "days", "value": [1]}}),
            StatusCode::BAD_REQUEST,
            bad("expires must be int, got list"),
        ),
        (
            json!({"name": "a", "expires": {"measure": "days", "value": {}}}),
            StatusCode::BAD_REQUEST,
            bad("expires must be int, got dict"),
        ),
    ];
    for (body, status, expected) in cases {
        let r = env
            .call(Method::POST, "/api/v2/auth/token/", Some(body.clone()))
            .await;
        assert_eq!(r.status, status, "{body} -> {}", r.body);
        assert!(r.content_type.starts_with("application/json"), "{body}");
        assert_eq!(r.json(), expected, "{body}");
    }

    // A null value makes the Python backend raise: 500 with its HTML page.
    let r = env
        .call(
            Method::POST,
            "/api/v2/auth/token/",
            Some(json!({"name": "a", "expires": {"measure": "days", "value": null}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.content_type.starts_with("text/html"));
    assert!(r.body.starts_with("<!doctype html>"), "{}", r.body);
    assert!(r.body.contains("500 Internal Server Error"));

    // A body that is not JSON at all.
    let token = env.sb.bootstrap_token().to_owned();
    let resp = env
        .http
        .post(env.url("/api/v2/auth/token/"))
        .bearer_auth(token)
        .body("name=a")
        .send()
        .await
        .expect("answered");
    let r = reply(resp).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"].as_str().is_some_and(|e| !e.is_empty()));

    // None of the rejected creates left a token behind.
    let names: Vec<Value> = env.list().await.into_iter().map(|t| t["name"].clone()).collect();
    assert_eq!(names, vec![json!("sandbox-bootstrap")]);
    env.sb.shutdown().await;
}

#[tokio::test]
async fn zero_and_negative_values_make_already_expired_tokens() {
    let env = start().await;
    for value in [0, -5] {
        let created = env
            .create(json!({"name": "past", "expires": {"measure": "days", "value": value}}))
            .await;
        let at = rfc1123(&created["expires"]);
        assert!(at <= Utc::now(), "{at}");
        assert_eq!(created["token"].as_str().map(str::len), Some(226));
        assert!(!env.accepted(created["token"].as_str().unwrap_or_default()).await);
    }
    env.sb.shutdown().await;
}

#[tokio::test]
async fn duplicate_names_and_long_names_are_allowed() {
    let env = start().await;
    let a = env.create(json!({"name": "twin"})).await;
    let b = env.create(json!({"name": "twin"})).await;
    assert_ne!(a["uuid"], b["uuid"]);
    assert_ne!(a["id"], b["id"]);
    let long = "x".repeat(2000);
    let c = env.create(json!({"name": long})).await;
    assert_eq!(c["name"], long.as_str());
    let twins = env
        .list()
        .await
        .into_iter()
        .filter(|t| t["name"] == "twin")
        .count();
    assert_eq!(twins, 2);
    env.sb.shutdown().await;
}

#[tokio::test]
async fn elitea_system_is_reserved_and_hidden() {
    let env = start().await;
    let listed = env.list().await;
    assert!(listed.iter().all(|t| t["name"] != "elitea-system"));
    assert_eq!(listed.len(), 1, "only the bootstrap token: {listed:?}");
    let r = env
        .call(
            Method::POST,
            "/api/v2/auth/token",
            Some(json!({"name": "elitea-system", "expires": null})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    env.sb.shutdown().await;
}

#[tokio::test]
async fn unknown_uuid_is_400_not_404() {
    let env = start().await;
    let uuid = "62b82885-6cd8-4b07-a0c2-5fc239c22ffa";
    for method in [Method::GET, Method::DELETE] {
        for path in [
            format!("/api/v2/auth/token/{uuid}"),
            format!("/api/v2/auth/token/{uuid}/"),
        ] {
            let r = env.call(method.clone(), &path, None).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{method} {path}");
            assert_eq!(
                r.json(),
                json!({"error": format!("token with uid {uuid} not found")})
            );
        }
    }
    env.sb.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Authentication

#[tokio::test]
async fn rejected_credentials_get_403_access_denied() {
    let env = start_with(no_cache()).await;
    let good = env.sb.bootstrap_token().to_owned();
    let deleted = env.create(json!({"name": "deleted"})).await;
    let deleted_token = deleted["token"].as_str().unwrap_or_default().to_owned();
    let r = env
        .call(
            Method::DELETE,
            &format!(
                "/api/v2/auth/token/{}",
                deleted["uuid"].as_str().unwrap_or_default()
            ),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    // The right shape, the wrong signature.
    let mut tampered = good.clone();
    let last = if tampered.ends_with('A') { "B" } else { "A" };
    tampered.replace_range(tampered.len() - 1.., last);
    // Signed by another sandbox (another database, another key).
    let foreign = start().await;
    let foreign_token = foreign.sb.bootstrap_token().to_owned();

    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("empty", Some(String::new())),
        ("scheme only", Some("Bearer".into())),
        ("other scheme", Some(format!("Basic {good}"))),
        ("no scheme", Some(good.clone())),
        ("garbage", Some("Bearer not-a-jwt".into())),
        ("three dots", Some("Bearer a.b.c".into())),
        ("tampered", Some(format!("Bearer {tampered}"))),
        ("foreign key", Some(format!("Bearer {foreign_token}"))),
        ("deleted", Some(format!("Bearer {deleted_token}"))),
    ];
    for path in ["/api/v2/auth/token/", "/api/v2/social/author/"] {
        for (what, auth) in &cases {
            let r = env.call_as(auth.as_deref(), Method::GET, path, None).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{what} on {path}");
            assert_access_denied(&r);
        }
    }
    // The scheme word is case-insensitive.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let r = env
            .call_as(
                Some(&format!("{scheme} {good}")),
                Method::GET,
                "/api/v2/auth/token/",
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{scheme}");
    }
    foreign.sb.shutdown().await;
    env.sb.shutdown().await;
}

#[tokio::test]
async fn expired_tokens_are_rejected_once_the_clock_passes_them() {
    let env = start_with(no_cache()).await;
    let created = env
        .create(json!({"name": "short", "expires": {"measure": "minutes", "value": 1}}))
        .await;
    let token = created["token"].as_str().unwrap_or_default().to_owned();
    assert!(env.accepted(&token).await);
    env.sb.advance_clock(chrono::Duration::minutes(2));
    assert!(!env.accepted(&token).await);
    // Still listed (with its past date) until deleted.
    assert!(env.list().await.iter().any(|t| t["uuid"] == created["uuid"]));
    env.sb.shutdown().await;
}

#[tokio::test]
async fn auth_cache_keeps_a_deleted_token_working_for_a_while() {
    let env = start().await; // default cache: 60 s
    let created = env.create(json!({"name": "cached"})).await;
    let token = created["token"].as_str().unwrap_or_default().to_owned();
    assert!(env.accepted(&token).await); // now cached
    let uuid = created["uuid"].as_str().unwrap_or_default();
    let r = env
        .call(Method::DELETE, &format!("/api/v2/auth/token/{uuid}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(env.accepted(&token).await, "cached for 60 s");
    env.sb.advance_clock(chrono::Duration::seconds(61));
    assert!(!env.accepted(&token).await, "cache lapsed");

    // Same with expiry: cached just before, still working just after.
    let created = env
        .create(json!({"name": "expiring", "expires": {"measure": "seconds", "value": 30}}))
        .await;
    let token = created["token"].as_str().unwrap_or_default().to_owned();
    assert!(env.accepted(&token).await);
    env.sb.advance_clock(chrono::Duration::seconds(40));
    assert!(env.accepted(&token).await, "expired but cached");
    env.sb.advance_clock(chrono::Duration::seconds(30));
    assert!(!env.accepted(&token).await);
    env.sb.shutdown().await;

    // Without the cache a deleted token is refused at once.
    let env = start_with(no_cache()).await;
    let created = env.create(json!({"name": "uncached"})).await;
    let token = created["token"].as_str().unwrap_or_default().to_owned();
    assert!(env.accepted(&token).await);
    let uuid = created["uuid"].as_str().unwrap_or_default();
    env.call(Method::DELETE, &format!("/api/v2/auth/token/{uuid}"), None)
        .await;
    assert!(!env.accepted(&token).await);
    env.sb.shutdown().await;
}

#[tokio::test]
async fn another_users_token_is_403_null() {
    let env = start().await;
    let other = env.other_user_token().await;
    let other_auth = format!("Bearer {other}");
    let r = env
        .call_as(
            Some(&other_auth),
            Method::POST,
            "/api/v2/auth/token/",
            Some(json!({"name": "theirs"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let theirs = r.json();
    assert_eq!(theirs["user_id"], 4);
    let uuid = theirs["uuid"].as_str().unwrap_or_default();

    for method in [Method::GET, Method::DELETE] {
        let r = env
            .call(method.clone(), &format!("/api/v2/auth/token/{uuid}"), None)
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method}");
        assert!(r.content_type.starts_with("application/json"));
        assert_eq!(r.body, "null");
    }
    // Still there for its owner, and lists do not leak across users.
    let r = env
        .call_as(
            Some(&other_auth),
            Method::GET,
            &format!("/api/v2/auth/token/{uuid}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(env.list().await.iter().all(|t| t["user_id"] == 3));
    let r = env
        .call_as(Some(&other_auth), Method::GET, "/api/v2/auth/token", None)
        .await;
    assert!(
        r.json()
            .as_array()
            .expect("array")
            .iter()
            .all(|t| t["user_id"] == 4)
    );
    env.sb.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Author and models

#[tokio::test]
async fn author_reports_the_sandbox_origin_and_a_private_project() {
    let env = start().await;
    for path in ["/api/v2/social/author/", "/api/v2/social/author"] {
        let r = env.call(Method::GET, path, None).await;
        assert_eq!(r.status, StatusCode::OK);
        let author = r.json();
        assert_eq!(author["id"], 3);
        assert_eq!(author["email"], "sandbox@elitea.local");
        assert_eq!(author["name"], "Sandbox User");
        assert_eq!(author["api_url"], env.sb.url());
        let personal = author["personal_project_id"].as_i64().expect("project id");
        assert_ne!(personal, 1);
    }
    assert!(env.sb.url().starts_with("http://127.0.0.1:"));
    assert!(!env.sb.url().ends_with('/'));
    env.sb.shutdown().await;

    // The personal project moves out of the way of a configured public project id.
    let env = start_with(SandboxOptions {
        public_project_id: 27,
        ..SandboxOptions::default()
    })
    .await;
    let author = env.call(Method::GET, "/api/v2/social/author/", None).await.json();
    assert_ne!(author["personal_project_id"], 27);
    env.sb.shutdown().await;
}

#[tokio::test]
async fn models_list_the_project_and_shared_models_with_a_default() {
    let env = start().await;
    let author = env.call(Method::GET, "/api/v2/social/author/", None).await.json();
    let personal = author["personal_project_id"].as_i64().expect("id");

    let with = env
        .call(
            Method::GET,
            &format!("/api/v2/configurations/models/{personal}?include_shared=true"),
            None,
        )
        .await;
    assert_eq!(with.status, StatusCode::OK);
    let with = with.json();
    let items = with["items"].as_array().expect("items");
    assert_eq!(with["total"], items.len());
    assert!(items.len() >= 3);
    let names: Vec<&str> = items.iter().filter_map(|m| m["name"].as_str()).collect();
    for expected in [
        "gpt-5-mini",
        "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "gpt-4.1",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    let own_default: Vec<&Value> = items
        .iter()
        .filter(|m| m["project_id"] == personal && m["default"] == true)
        .collect();
    assert_eq!(own_default.len(), 1);
    assert_eq!(own_default[0]["name"], "gpt-5-mini");
    assert_eq!(own_default[0]["shared"], false);
    assert!(
        items
            .iter()
            .filter(|m| m["project_id"] == 1)
            .all(|m| m["shared"] == true)
    );
    assert_eq!(with["default_model_name"], "gpt-5-mini");
    assert_eq!(with["default_model_project_id"], personal);

    for query in ["?include_shared=false", ""] {
        let without = env
            .call(
                Method::GET,
                &format!("/api/v2/configurations/models/{personal}/{query}"),
                None,
            )
            .await
            .json();
        let items = without["items"].as_array().expect("items");
        assert_eq!(without["total"], items.len());
        assert!(items.iter().all(|m| m["project_id"] == personal), "{query}");
        assert!(items.iter().all(|m| m["shared"] == false));
    }

    let public = env
        .call(
            Method::GET,
            "/api/v2/configurations/models/1?include_shared=true",
            None,
        )
        .await
        .json();
    assert!(
        public["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|m| m["default"] == true)
    );
    assert_eq!(public["default_model_project_id"], 1);

    let unknown = env
        .call(
            Method::GET,
            "/api/v2/configurations/models/999?include_shared=true",
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::FORBIDDEN);
    assert_eq!(unknown.body, "null");
    let not_a_number = env
        .call(Method::GET, "/api/v2/configurations/models/abc", None)
        .await;
    assert_eq!(not_a_number.status, StatusCode::NOT_FOUND);
    env.sb.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let env = start().await;
    for path in ["/api/v1/auth/token/", "/api/v2/nothing", "/"] {
        let r = env.call(Method::GET, path, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
    env.sb.shutdown().await;
}

/// A `tracing` writer that keeps everything in memory.
#[tokio::test]
async fn requests_are_logged_without_credentials() {
    // The test runtime runs the server on this same thread, so its log lines are captured.
    let capture = common::logs::capture(tracing::Level::TRACE);

    let env = start().await;
    let created = env.create(json!({"name": "logged"})).await;
    let token = created["token"].as_str().unwrap_or_default().to_owned();
    assert!(env.accepted(&token).await);
    env.call_as(Some("Bearer wrong"), Method::GET, "/api/v2/social/author/", None)
        .await;
    env.sb.set_faults(vec![rule("get:fail=1:close")]);
    let _ = env
        .http
        .get(env.url("/api/v2/auth/token/x"))
        .bearer_auth(&token)
        .send()
        .await;
    let bootstrap = env.sb.bootstrap_token().to_owned();
    env.sb.shutdown().await;

    let log = capture.finish();
    assert!(
        log.contains("method=POST path=/api/v2/auth/token/ status=200"),
        "{log}"
    );
    assert!(log.contains("path=/api/v2/social/author/ status=403"), "{log}");
    assert!(log.contains("status=\"closed\""), "{log}");
    assert!(log.contains("latency_ms="), "{log}");
    for secret in [&bootstrap, &token] {
        // Not the value, not even the signature or the masked tail.
        assert!(!log.contains(secret.split('.').nth(2).unwrap_or("-")), "{log}");
        assert!(!log.contains(&secret[secret.len() - 7..]), "{log}");
    }
    assert!(!log.to_ascii_lowercase().contains("bearer"), "{log}");
}

// ---------------------------------------------------------------------------------------------
// Persistence

#[tokio::test]
async fn a_file_database_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested").join("sandbox.db");
    let opts = || SandboxOptions {
        db: DbLocation::File(path.clone()),
        ..SandboxOptions::default()
    };

    let env = start_with(opts()).await;
    let bootstrap = env.sb.bootstrap_token().to_owned();
    let created = env
        .create(json!({"name": "kept", "expires": {"measure": "days", "value": 7}}))
        .await;
    let first_url = env.sb.url().to_owned();
    // WAL mode: the write-ahead log sits next to the database while it is open.
    assert!(dir.path().join("nested").join("sandbox.db-wal").exists());
    env.sb.shutdown().await;

    let env = start_with(opts()).await;
    assert_eq!(env.sb.bootstrap_token(), bootstrap);
    let listed = env.list().await;
    let kept = listed
        .iter()
        .find(|t| t["uuid"] == created["uuid"])
        .expect("token kept");
    assert_eq!(kept["expires"], created["expires"]);
    assert_eq!(kept["id"], created["id"]);
    // The signing key was kept too: the old full value still authenticates.
    assert!(env.accepted(created["token"].as_str().unwrap_or_default()).await);
    // Ids keep growing, the hidden token was not seeded twice.
    let next = env.create(json!({"name": "next"})).await;
    assert!(next["id"].as_i64() > created["id"].as_i64());
    assert_eq!(listed.len(), 2);
    assert_ne!(env.sb.url(), "", "{first_url}");
    env.sb.shutdown().await;

    // A fresh memory database is a different world.
    let env = start().await;
    assert_ne!(env.sb.bootstrap_token(), bootstrap);
    env.sb.shutdown().await;
}

#[tokio::test]
async fn start_errors_name_the_address_and_the_path() {
    let first = start().await;
    let taken = first.sb.addr();
    let err = Sandbox::start(SandboxOptions {
        addr: taken,
        ..SandboxOptions::default()
    })
    .await
    .expect_err("port in use");
    assert!(matches!(err, SandboxError::Bind { .. }));
    assert!(err.to_string().contains(&taken.to_string()), "{err}");

    let dir = tempfile::tempdir().expect("tempdir");
    // A directory is not a database file.
    let err = Sandbox::start(SandboxOptions {
        db: DbLocation::File(dir.path().to_path_buf()),
        ..SandboxOptions::default()
    })
    .await
    .expect_err("not a database");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
    first.sb.shutdown().await;
}

#[tokio::test]
async fn ten_thousand_tokens_are_listed() {
    let env = start().await;
    let total = 10_000;
    let chunks = 8;
    let mut tasks = Vec::new();
    for chunk in 0..chunks {
        let http = env.http.clone();
        let url = env.url("/api/v2/auth/token/");
        let token = env.sb.bootstrap_token().to_owned();
        tasks.push(tokio::spawn(async move {
            for i in (chunk..total).step_by(chunks) {
                let r = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"name": format!("bulk-{i}")}))
                    .send()
                    .await
                    .expect("create");
                assert_eq!(r.status(), StatusCode::OK);
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let listed = env.list().await;
    assert_eq!(listed.len(), total + 1);
    env.sb.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Faults

fn rule(s: &str) -> FaultRule {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[tokio::test]
async fn latency_is_added_before_answering() {
    let env = start().await;
    env.sb.set_faults(vec![rule("list:latency=300ms")]);
    let started = Instant::now();
    let r = env.call(Method::GET, "/api/v2/auth/token/", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    env.sb.shutdown().await;
}

#[tokio::test]
async fn failure_statuses_html_pages_and_truncated_json_reach_the_client() {
    let env = start().await;

    env.sb.set_faults(vec![rule("create:fail=1:503")]);
    let r = env
        .call(Method::POST, "/api/v2/auth/token/", Some(json!({"name": "x"})))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    // Other routes are untouched by a create rule.
    assert_eq!(
        env.call(Method::GET, "/api/v2/auth/token/", None).await.status,
        StatusCode::OK
    );

    env.sb.set_faults(vec![rule("any:fail=1:html")]);
    for path in ["/api/v2/auth/token/", "/api/v2/social/author/"] {
        let r = env.call(Method::GET, path, None).await;
        assert_eq!(r.status, StatusCode::BAD_GATEWAY);
        assert!(r.content_type.starts_with("text/html"));
        assert!(r.body.contains("502 Bad Gateway"), "{}", r.body);
        assert!(serde_json::from_str::<Value>(&r.body).is_err());
    }
    // `any` covers unknown paths too.
    let r = env.call(Method::GET, "/api/v2/nothing", None).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    // Faults come before authentication, as a proxy's would.
    let r = env.call_as(None, Method::GET, "/api/v2/auth/token/", None).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);

    env.sb.set_faults(vec![rule("list:fail=1:truncated")]);
    let r = env.call(Method::GET, "/api/v2/auth/token/", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.content_type.starts_with("application/json"));
    assert!(!r.body.is_empty());
    assert!(serde_json::from_str::<Value>(&r.body).is_err(), "{}", r.body);

    // Rate 0 never fails.
    env.sb.set_faults(vec![rule("any:fail=0:500")]);
    for _ in 0..20 {
        assert_eq!(
            env.call(Method::GET, "/api/v2/auth/token/", None).await.status,
            StatusCode::OK
        );
    }
    env.sb.set_faults(Vec::new());
    assert!(env.sb.faults().is_empty());
    env.sb.shutdown().await;
}

#[tokio::test]
async fn a_closed_connection_is_an_error_not_a_response() {
    let env = start().await;
    let created = env.create(json!({"name": "survivor"})).await;
    let uuid = created["uuid"].as_str().unwrap_or_default();
    env.sb.set_faults(vec![rule("delete:fail=1:close")]);
    let err = env
        .http
        .delete(env.url(&format!("/api/v2/auth/token/{uuid}")))
        .bearer_auth(env.sb.bootstrap_token())
        .send()
        .await
        .expect_err("no response");
    // hyper's IncompleteMessage: the connection closed before any response.
    assert!(err.is_request(), "{err:?}");
    assert!(!err.is_status(), "{err:?}");
    assert!(err.status().is_none());
    // The sandbox keeps serving, and the faulted delete never ran.
    env.sb.set_faults(Vec::new());
    assert!(env.list().await.iter().any(|t| t["uuid"] == uuid));
    env.sb.shutdown().await;
}

#[tokio::test]
async fn the_control_api_drives_faults_clock_and_credentials_over_http() {
    let env = start_with(no_cache()).await;

    let health = env.control(Method::GET, "/_sandbox/health", json!(null)).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["url"], env.sb.url());

    // Faults: set, read back, observe, clear.
    let rules = json!([{"route": "create", "latency_ms": 0, "failure_rate": 1.0, "failure": "html"}]);
    let r = env.control(Method::PUT, "/_sandbox/faults", rules).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        env.sb.faults(),
        vec![FaultRule {
            route: Route::CreateToken,
            latency: Duration::ZERO,
            failure_rate: 1.0,
            failure: Failure::HtmlProxyPage,
        }]
    );
    let read = env.control(Method::GET, "/_sandbox/faults", json!(null)).await;
    assert_eq!(read.json()[0]["failure"], "html");
    let r = env
        .call(Method::POST, "/api/v2/auth/token/", Some(json!({"name": "x"})))
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);

    // The control API itself is never faulted.
    let r = env
        .control(
            Method::PUT,
            "/_sandbox/faults/",
            json!([{"route": "any", "failure_rate": 1, "failure": 500}, {"route": "list", "latency_ms": 10, "failure": "close"}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(env.sb.faults().len(), 2);
    assert_eq!(env.sb.faults()[0].failure, Failure::Status(500));
    let r = env.control(Method::DELETE, "/_sandbox/faults", json!(null)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(env.sb.faults().is_empty());

    for bad in [
        json!({"route": "create"}),
        json!([{"route": "nowhere"}]),
        json!([{"route": "create", "failure_rate": 2.0}]),
        json!([{"route": "create", "failure": "teapot"}]),
        json!([{"route": "create", "failure": 200}]),
        json!([{"route": "create", "latency": 200}]),
    ] {
        let r = env.control(Method::PUT, "/_sandbox/faults", bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.json()["error"].is_string());
    }

    // Clock: an hour token expires after advancing two hours.
    let created = env
        .create(json!({"name": "hour", "expires": {"measure": "hours", "value": 1}}))
        .await;
    let token = created["token"].as_str().unwrap_or_default().to_owned();
    assert!(env.accepted(&token).await);
    let r = env
        .control(Method::POST, "/_sandbox/clock", json!({"advance_seconds": 7200}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["offset_seconds"], 7200.0);
    assert!(!env.accepted(&token).await);
    let r = env
        .control(Method::POST, "/_sandbox/clock", json!({"advance": 1}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Credentials for both users; unknown users are refused.
    let r = env
        .control(Method::POST, "/_sandbox/credential", json!({"user": "other"}))
        .await;
    let other = r.json();
    assert_eq!(other["user_id"], 4);
    let other_token = other["token"].as_str().unwrap_or_default();
    assert_jwt_shape(other_token);
    assert_eq!(other_token.len(), 207);
    let author = env
        .call_as(
            Some(&format!("Bearer {other_token}")),
            Method::GET,
            "/api/v2/social/author/",
            None,
        )
        .await
        .json();
    assert_eq!(author["id"], 4);
    assert_ne!(author["personal_project_id"], 1);
    let r = env
        .control(Method::POST, "/_sandbox/credential", json!({"user": "sandbox"}))
        .await;
    assert_eq!(r.json()["user_id"], 3);
    let r = env
        .control(Method::POST, "/_sandbox/credential", json!({"user": "mallory"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("other"), "{}", r.body);
    env.sb.shutdown().await;
}

#[test]
fn fault_rules_parse_from_the_cli_syntax() {
    let ms = Duration::from_millis;
    let good: Vec<(&str, FaultRule)> = vec![
        (
            "list:latency=200ms",
            FaultRule {
                route: Route::ListTokens,
                latency: ms(200),
                failure_rate: 0.0,
                failure: Failure::Status(500),
            },
        ),
        (
            "create:fail=0.5:500",
            FaultRule {
                route: Route::CreateToken,
                latency: Duration::ZERO,
                failure_rate: 0.5,
                failure: Failure::Status(500),
            },
        ),
        (
            "any:fail=1:html",
            FaultRule {
                route: Route::Any,
                latency: Duration::ZERO,
                failure_rate: 1.0,
                failure: Failure::HtmlProxyPage,
            },
        ),
        (
            "get:fail=1:truncated",
            FaultRule {
                route: Route::GetToken,
                latency: Duration::ZERO,
                failure_rate: 1.0,
                failure: Failure::TruncatedJson,
            },
        ),
        (
            "delete:fail=1:close",
            FaultRule {
                route: Route::DeleteToken,
                latency: Duration::ZERO,
                failure_rate: 1.0,
                failure: Failure::CloseConnection,
            },
        ),
        (
            "models:latency=50ms,fail=0.2:503",
            FaultRule {
                route: Route::Models,
                latency: ms(50),
                failure_rate: 0.2,
                failure: Failure::Status(503),
            },
        ),
        (
            "author:fail=0.25,latency=1.5s",
            FaultRule {
                route: Route::Author,
                latency: ms(1500),
                failure_rate: 0.25,
                failure: Failure::Status(500),
            },
        ),
        (
            "*:latency=0ms",
            FaultRule {
                route: Route::Any,
                latency: Duration::ZERO,
                failure_rate: 0.0,
                failure: Failure::Status(500),
            },
        ),
    ];
    for (input, expected) in good {
        let parsed = FaultRule::from_str(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(parsed, expected, "{input}");
        // Display gives the CLI form back.
        assert_eq!(FaultRule::from_str(&parsed.to_string()), Ok(parsed.clone()));
        // And the JSON form round-trips.
        let json = serde_json::to_string(&parsed).expect("serialize");
        assert_eq!(serde_json::from_str::<FaultRule>(&json).ok(), Some(parsed));
    }

    let bad = [
        "",
        "list",
        "list:",
        "nowhere:latency=1ms",
        "list:latency=200",
        "list:latency=fast",
        "list:latency=-1s",
        "list:fail=1.5",
        "list:fail=-0.1",
        "list:fail=x",
        "list:fail=1:teapot",
        "list:fail=1:200",
        "list:fail=1:600",
        "list:speed=1",
        "list:latency=1ms,latency=2ms",
        "list:latency=1ms,",
    ];
    for input in bad {
        let err = FaultRule::from_str(input).expect_err(input);
        let message = err.to_string();
        assert!(message.contains(&format!("{input:?}")), "{message}");
        // Every error lists the allowed forms.
        for form in ["ROUTE:KNOB", "latency=", "fail=", "html", "truncated", "close"] {
            assert!(message.contains(form), "{input}: {message}");
        }
    }
}

#[tokio::test]
async fn the_control_api_seeds_many_tokens_in_one_call() {
    let env = start_with(no_cache()).await;
    let before = env.list().await.len();
    let r = env
        .control(
            Method::POST,
            "/_sandbox/seed",
            json!({"count": 1500, "prefix": "bulk", "expires_in": [3600, null]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["created"], 1500);
    let list = env.list().await;
    assert_eq!(list.len(), before + 1500);
    let seeded: Vec<&Value> = list
        .iter()
        .filter(|t| t["name"].as_str().is_some_and(|n| n.starts_with("bulk-")))
        .collect();
    assert_eq!(seeded.len(), 1500);
    assert_eq!(seeded[0]["name"], "bulk-00001");
    assert_eq!(seeded[1499]["name"], "bulk-01500");
    // Lifetimes are taken in turn: odd positions expire in an hour, even ones never.
    let now = Utc::now();
    let first = rfc1123(&seeded[0]["expires"]);
    assert!(
        (first - now - chrono::Duration::hours(1)).num_seconds().abs() < 60,
        "{first}"
    );
    assert!(seeded[1]["expires"].is_null());
    for t in &seeded[..4] {
        assert_token_object(t);
    }

    for bad in [
        json!({"count": 0}),
        json!({"count": 200_001}),
        json!({"count": 3, "expires_in": [0]}),
        json!({"count": 3, "prefix": "elitea-system"}),
        json!({"count": 3, "user": "mallory"}),
        json!({"count": 3, "colour": "red"}),
    ] {
        let r = env.control(Method::POST, "/_sandbox/seed", bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.json()["error"].is_string(), "{bad}");
    }
    env.sb.shutdown().await;
}
