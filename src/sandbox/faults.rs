//! Fault injection: rules, their CLI syntax, their JSON form, and the middleware that
//! applies them in front of the ELITEA routes (never in front of `/_sandbox/`).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::conn::ConnHandle;
use super::state::AppState;

/// One fault rule: for requests to `route`, wait `latency`, then with probability
/// `failure_rate` answer with `failure` instead of the real handler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "FaultRuleWire", into = "FaultRuleWire")]
pub struct FaultRule {
    pub route: Route,
    pub latency: Duration,
    /// 0.0 ..= 1.0
    pub failure_rate: f64,
    pub failure: Failure,
}

/// Which ELITEA call a rule applies to. Matching ignores a trailing slash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Route {
    /// Every request except the control API, including unknown paths.
    #[serde(rename = "any", alias = "*")]
    Any,
    /// `GET /api/v2/auth/token/`
    #[serde(rename = "list")]
    ListTokens,
    /// `GET /api/v2/auth/token/{uuid}`
    #[serde(rename = "get")]
    GetToken,
    /// `POST /api/v2/auth/token/`
    #[serde(rename = "create")]
    CreateToken,
    /// `DELETE /api/v2/auth/token/{uuid}`
    #[serde(rename = "delete")]
    DeleteToken,
    /// `GET /api/v2/social/author/`
    #[serde(rename = "author")]
    Author,
    /// `GET /api/v2/configurations/models/{project_id}`
    #[serde(rename = "models")]
    Models,
}

/// What a failing request gets instead of the real answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// That status (400..=599) with a JSON body `{"error": "<reason phrase>"}`.
    Status(u16),
    /// 502 `text/html`, the page an nginx gateway shows when the backend is down.
    HtmlProxyPage,
    /// 200 `text/html`: a sign-in page, as an SSO proxy or a captive portal serves it.
    SignInPage,
    /// 200 `application/json` with the first half of the real handler's body.
    TruncatedJson,
    /// The connection is closed without any response.
    CloseConnection,
}

/// The forms `FaultRule::from_str` accepts; part of every parse error.
pub const FAULT_SYNTAX: &str = "\
expected ROUTE:KNOB[,KNOB]
  ROUTE   any | list | get | create | delete | author | models
  KNOB    latency=DURATION          e.g. latency=200ms, latency=1.5s
          fail=RATE[:FAILURE]       RATE 0..1, e.g. fail=0.5, fail=1:html
  FAILURE 400..599 (default 500) | html | signin | truncated | close
examples: list:latency=200ms  create:fail=0.5:500  any:fail=1:html
          get:fail=1:truncated  delete:fail=1:close  models:latency=50ms,fail=0.2:503";

/// Why a fault rule string or JSON object was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fault rule {input:?}: {reason}\n{FAULT_SYNTAX}")]
pub struct FaultRuleParseError {
    input: String,
    reason: String,
}

impl FaultRuleParseError {
    fn new(input: &str, reason: impl Into<String>) -> Self {
        FaultRuleParseError {
            input: input.to_owned(),
            reason: reason.into(),
        }
    }
}

impl Route {
    const ALL: [(Route, &'static str); 7] = [
        (Route::Any, "any"),
        (Route::ListTokens, "list"),
        (Route::GetToken, "get"),
        (Route::CreateToken, "create"),
        (Route::DeleteToken, "delete"),
        (Route::Author, "author"),
        (Route::Models, "models"),
    ];

    pub fn as_str(self) -> &'static str {
        Route::ALL
            .iter()
            .find(|(r, _)| *r == self)
            .map_or("any", |(_, s)| s)
    }

    /// The ELITEA call a request is, if it is one. `Any` rules match regardless.
    pub(crate) fn classify(method: &Method, path: &str) -> Option<Route> {
        let path = path.strip_suffix('/').unwrap_or(path);
        let segments: Vec<&str> = path.split('/').collect();
        match (method, segments.as_slice()) {
            (&Method::GET, ["", "api", "v2", "auth", "token"]) => Some(Route::ListTokens),
            (&Method::POST, ["", "api", "v2", "auth", "token"]) => Some(Route::CreateToken),
            (&Method::GET, ["", "api", "v2", "auth", "token", _]) => Some(Route::GetToken),
            (&Method::DELETE, ["", "api", "v2", "auth", "token", _]) => Some(Route::DeleteToken),
            (&Method::GET, ["", "api", "v2", "social", "author"]) => Some(Route::Author),
            (&Method::GET, ["", "api", "v2", "configurations", "models", _]) => Some(Route::Models),
            _ => None,
        }
    }

    fn matches(self, request: Option<Route>) -> bool {
        self == Route::Any || Some(self) == request
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Route {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        if s == "*" {
            return Ok(Route::Any);
        }
        Route::ALL
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(r, _)| *r)
            .ok_or_else(|| format!("unknown route {s:?}"))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status(code) => write!(f, "{code}"),
            Failure::HtmlProxyPage => f.write_str("html"),
            Failure::SignInPage => f.write_str("signin"),
            Failure::TruncatedJson => f.write_str("truncated"),
            Failure::CloseConnection => f.write_str("close"),
        }
    }
}

impl FromStr for Failure {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "html" => Ok(Failure::HtmlProxyPage),
            "signin" => Ok(Failure::SignInPage),
            "truncated" => Ok(Failure::TruncatedJson),
            "close" => Ok(Failure::CloseConnection),
            other => match other.parse::<u16>() {
                Ok(code) => Failure::status(code),
                Err(_) => Err(format!("unknown failure {other:?}")),
            },
        }
    }
}

impl Failure {
    fn status(code: u16) -> Result<Failure, String> {
        if (400..=599).contains(&code) {
            Ok(Failure::Status(code))
        } else {
            Err(format!("failure status {code} is not in 400..599"))
        }
    }
}

impl Serialize for Failure {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Failure::Status(code) => s.serialize_u16(*code),
            other => s.serialize_str(&other.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Failure {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A status may come as a number or a string: `500` or `"500"`.
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => s.parse().map_err(serde::de::Error::custom),
            serde_json::Value::Number(n) => n
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(|| format!("failure status {n} is not in 400..599"))
                .and_then(Failure::status)
                .map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!(
                "failure must be a status number or \"html\", \"truncated\", \"close\", got {other}"
            ))),
        }
    }
}

/// The JSON form used by `PUT /_sandbox/faults`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultRuleWire {
    route: Route,
    #[serde(default)]
    latency_ms: u64,
    #[serde(default)]
    failure_rate: f64,
    #[serde(default = "default_failure")]
    failure: Failure,
}

fn default_failure() -> Failure {
    Failure::Status(500)
}

impl TryFrom<FaultRuleWire> for FaultRule {
    type Error = String;
    fn try_from(w: FaultRuleWire) -> Result<Self, String> {
        check_rate(w.failure_rate)?;
        Ok(FaultRule {
            route: w.route,
            latency: Duration::from_millis(w.latency_ms),
            failure_rate: w.failure_rate,
            failure: w.failure,
        })
    }
}

impl From<FaultRule> for FaultRuleWire {
    fn from(r: FaultRule) -> Self {
        FaultRuleWire {
            route: r.route,
            latency_ms: u64::try_from(r.latency.as_millis()).unwrap_or(u64::MAX),
            failure_rate: r.failure_rate,
            failure: r.failure,
        }
    }
}

fn check_rate(rate: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&rate) {
        Ok(())
    } else {
        Err(format!("failure rate {rate} is not between 0 and 1"))
    }
}

impl FromStr for FaultRule {
    type Err = FaultRuleParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| FaultRuleParseError::new(input, reason);
        let (route, knobs) = input
            .split_once(':')
            .ok_or_else(|| err("missing ':' after the route".into()))?;
        let route: Route = route.parse().map_err(err)?;
        let mut latency = None;
        let mut fail = None;
        for knob in knobs.split(',') {
            let (key, value) = knob
                .split_once('=')
                .ok_or_else(|| err(format!("knob {knob:?} is not KEY=VALUE")))?;
            match key.trim().to_ascii_lowercase().as_str() {
                "latency" if latency.is_none() => latency = Some(parse_duration(value).map_err(err)?),
                "fail" if fail.is_none() => fail = Some(parse_fail(value).map_err(err)?),
                "latency" | "fail" => return Err(err(format!("{} given twice", key.trim()))),
                other => return Err(err(format!("unknown knob {other:?}"))),
            }
        }
        let (failure_rate, failure) = fail.unwrap_or((0.0, default_failure()));
        Ok(FaultRule {
            route,
            latency: latency.unwrap_or(Duration::ZERO),
            failure_rate,
            failure,
        })
    }
}

impl fmt::Display for FaultRule {
    /// The CLI form, which `from_str` reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:latency={}ms,fail={}:{}",
            self.route,
            self.latency.as_millis(),
            self.failure_rate,
            self.failure
        )
    }
}

fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let bad = || format!("latency {value:?} is not a duration like 200ms or 1.5s");
    let (number, scale) = if let Some(n) = value.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1.0)
    } else {
        return Err(bad());
    };
    let number: f64 = number.trim().parse().map_err(|_| bad())?;
    Duration::try_from_secs_f64(number * scale).map_err(|_| bad())
}

fn parse_fail(value: &str) -> Result<(f64, Failure), String> {
    let (rate, failure) = match value.split_once(':') {
        Some((rate, failure)) => (rate, failure.parse::<Failure>()?),
        None => (value, default_failure()),
    };
    let rate: f64 = rate
        .trim()
        .parse()
        .map_err(|_| format!("failure rate {:?} is not a number", rate.trim()))?;
    check_rate(rate)?;
    Ok((rate, failure))
}

/// Marks a response whose connection was killed, so the request log says so.
#[derive(Clone, Copy)]
pub(crate) struct ConnectionClosed;

/// Middleware: latency, then maybe a failure, then the real handler.
pub(crate) async fn inject(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = Route::classify(req.method(), req.uri().path());
    state.count_hit(route.unwrap_or(Route::Any));
    let rules: Vec<FaultRule> = state
        .faults()
        .into_iter()
        .filter(|rule| rule.route.matches(route))
        .collect();
    for rule in rules {
        if !rule.latency.is_zero() {
            tokio::time::sleep(rule.latency).await;
        }
        // `random::<f64>()` is in [0, 1): rate 0 never fails, rate 1 always does.
        if rule.failure_rate > 0.0 && rand::random::<f64>() < rule.failure_rate {
            return fail(rule.failure, req, next).await;
        }
    }
    next.run(req).await
}

async fn fail(failure: Failure, req: Request, next: Next) -> Response {
    match failure {
        Failure::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let reason = status.canonical_reason().unwrap_or("Error");
            (status, axum::Json(serde_json::json!({ "error": reason }))).into_response()
        }
        Failure::HtmlProxyPage => (
            StatusCode::BAD_GATEWAY,
            [(header::CONTENT_TYPE, "text/html")],
            NGINX_502,
        )
            .into_response(),
        Failure::SignInPage => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            SIGN_IN_PAGE,
        )
            .into_response(),
        Failure::TruncatedJson => {
            // Run the real handler (the side effect happens, as when a proxy cuts a reply),
            // then send half of its body as a complete-looking 200.
            let response = next.run(req).await;
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap_or_default();
            let cut = if body.is_empty() {
                axum::body::Bytes::from_static(br#"{"error": "tru"#)
            } else {
                body.slice(..body.len() / 2)
            };
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                Body::from(cut),
            )
                .into_response()
        }
        Failure::CloseConnection => {
            if let Some(ConnectInfo(conn)) = req.extensions().get::<ConnectInfo<ConnHandle>>() {
                conn.abort();
            }
            let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            response.extensions_mut().insert(ConnectionClosed);
            response
        }
    }
}

const NGINX_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

const SIGN_IN_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\n<body>\
<form method=\"post\" action=\"/login\"><h1>Sign in to continue</h1>\
<input name=\"username\"><input name=\"password\" type=\"password\">\
<button>Sign in</button></form></body></html>\n";
