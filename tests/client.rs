//! The ELITEA client against the sandbox over real loopback HTTP: every endpoint, every error
//! kind (with the sandbox's fault knobs), retries for reads only.

mod common;

use elitea_tokens::api::{ApiError, Client, ClientOptions, ErrorKind, ServerUrl};
use elitea_tokens::domain::{Expiration, Secret};
use elitea_tokens::sandbox::{Failure, FaultRule, Route, Sandbox};
use std::time::Duration;
use uuid::Uuid;

async fn sandbox() -> Sandbox {
    common::in_process_sandbox().await
}

fn options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(2),
        read_retries: 2,
        retry_delay: Duration::from_millis(10),
    }
}

fn client_for(url: &str, credential: &str) -> Client {
    Client::new(
        ServerUrl::parse(url, false).unwrap(),
        Secret::new(credential),
        options(),
    )
    .unwrap()
}

fn client(sandbox: &Sandbox) -> Client {
    client_for(sandbox.url(), sandbox.bootstrap_token())
}

fn fault(route: Route, failure: Failure) -> FaultRule {
    FaultRule {
        route,
        latency: Duration::ZERO,
        failure_rate: 1.0,
        failure,
    }
}

#[tokio::test]
async fn every_endpoint_round_trips() {
    let sandbox = sandbox().await;
    let client = client(&sandbox);
    let before = chrono::Utc::now();

    let dated = client
        .create_token("VSCode-MacBook-Dev", "30d".parse().unwrap())
        .await
        .unwrap();
    assert!(common::jwt_shape(dated.value.expose()));
    assert_eq!(dated.value.expose().len(), 226);
    let value = dated.value.expose();
    assert_eq!(dated.token.masked, format!("...{}", &value[value.len() - 7..]));
    let expires = dated.token.expires.expect("a dated token");
    let expected = before + chrono::Duration::days(30);
    assert!(
        (expires - expected).num_seconds().abs() <= 5,
        "{expires} vs {expected}"
    );

    let forever = client.create_token("Local-Dev", Expiration::Never).await.unwrap();
    assert_eq!(forever.value.expose().len(), 207);
    assert_eq!(forever.token.expires, None);

    let listed = client.list_tokens().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|t| t.name.as_str()).collect();
    assert!(
        names.contains(&"VSCode-MacBook-Dev") && names.contains(&"Local-Dev"),
        "{names:?}"
    );
    assert!(
        !names.contains(&"elitea-system"),
        "the platform's token stays hidden"
    );
    let in_list = listed.iter().find(|t| t.uuid == dated.token.uuid).unwrap();
    assert_eq!(in_list, &dated.token, "list shows what create returned, masked");

    let fetched = client.get_token(dated.token.uuid).await.unwrap();
    assert_eq!(fetched, dated.token);

    let author = client.author().await.unwrap();
    assert_eq!(author.api_url, sandbox.url());
    assert_ne!(
        author.personal_project_id, 1,
        "the personal project is not the Public one"
    );
    let models = client.models(author.personal_project_id).await.unwrap();
    assert!(models.items.len() >= 2, "{models:?}");
    assert_eq!(
        models
            .items
            .iter()
            .filter(|m| m.default && m.project_id == author.personal_project_id)
            .count(),
        1
    );

    client.delete_token(dated.token.uuid).await.unwrap();
    for result in [
        client.get_token(dated.token.uuid).await.map(|_| ()),
        client.delete_token(dated.token.uuid).await,
    ] {
        assert_eq!(result.unwrap_err().kind, ErrorKind::NotFound);
    }
}

/// One way to fail: the faults to set, and the call that meets them.
struct Case {
    name: &'static str,
    faults: Vec<FaultRule>,
    kind: ErrorKind,
    status: Option<u16>,
    message: &'static str,
}

#[tokio::test]
async fn every_error_kind_from_real_http() {
    let sandbox = sandbox().await;
    let client = client(&sandbox);
    let cases = vec![
        Case {
            name: "server error",
            faults: vec![fault(Route::ListTokens, Failure::Status(500))],
            kind: ErrorKind::ServerError,
            status: Some(500),
            message: "failed with HTTP 500",
        },
        Case {
            name: "gateway page from a proxy",
            faults: vec![fault(Route::ListTokens, Failure::HtmlProxyPage)],
            kind: ErrorKind::ServerError,
            status: Some(502),
            message: "HTML error page",
        },
        Case {
            name: "sign-in page from a proxy",
            faults: vec![fault(Route::ListTokens, Failure::SignInPage)],
            kind: ErrorKind::Protocol,
            status: Some(200),
            message: "HTML page instead of the ELITEA API",
        },
        Case {
            name: "truncated JSON",
            faults: vec![fault(Route::ListTokens, Failure::TruncatedJson)],
            kind: ErrorKind::Protocol,
            status: Some(200),
            message: "not what the ELITEA API returns",
        },
        Case {
            name: "connection closed",
            faults: vec![fault(Route::ListTokens, Failure::CloseConnection)],
            kind: ErrorKind::Unreachable,
            status: None,
            message: "could not reach",
        },
    ];
    for case in cases {
        sandbox.set_faults(case.faults);
        let error = client.list_tokens().await.expect_err(case.name);
        assert_eq!(error.kind, case.kind, "{}: {error}", case.name);
        assert_eq!(error.status, case.status, "{}: {error}", case.name);
        assert!(error.message.contains(case.message), "{}: {error}", case.name);
        assert_no_secret(&error, sandbox.bootstrap_token());
    }

    let impatient = Client::new(
        ServerUrl::parse(sandbox.url(), false).unwrap(),
        Secret::new(sandbox.bootstrap_token()),
        ClientOptions {
            request_timeout: Duration::from_millis(300),
            read_retries: 0,
            ..options()
        },
    )
    .unwrap();
    sandbox.set_faults(vec![FaultRule {
        route: Route::ListTokens,
        latency: Duration::from_secs(2),
        failure_rate: 0.0,
        failure: Failure::Status(500),
    }]);
    let error = impatient.list_tokens().await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unreachable, "{error}");
    assert!(error.message.contains("timed out"), "{error}");
    sandbox.set_faults(vec![]);

    // Refusals that come from the server's own rules.
    let wrong = client_for(
        sandbox.url(),
        "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.e30.bm90LWEtcmVhbC1zaWduYXR1cmU",
    );
    let error = wrong.list_tokens().await.unwrap_err();
    assert_eq!(
        (error.kind, error.status),
        (ErrorKind::CredentialRejected, Some(403))
    );
    assert!(error.message.contains("Access Denied"), "{error}");

    let short = client
        .create_token("short-lived", "1m".parse().unwrap())
        .await
        .unwrap();
    let expiring = client_for(sandbox.url(), short.value.expose());
    assert!(expiring.list_tokens().await.is_ok());
    sandbox.advance_clock(chrono::Duration::minutes(2));
    let error = expiring.list_tokens().await.unwrap_err();
    assert_eq!(
        error.kind,
        ErrorKind::CredentialRejected,
        "an expired credential: {error}"
    );
    assert_no_secret(&error, short.value.expose());

    let error = client.get_token(Uuid::new_v4()).await.unwrap_err();
    assert_eq!((error.kind, error.status), (ErrorKind::NotFound, Some(400)));
    assert!(error.message.contains("not found"), "{error}");

    let error = client
        .create_token("elitea-system", Expiration::Never)
        .await
        .unwrap_err();
    assert_eq!((error.kind, error.status), (ErrorKind::InvalidInput, Some(400)));
    assert!(
        error.message.contains(r#"Name "elitea-system" is reserved"#),
        "{error}"
    );

    let other = reqwest::Client::new()
        .post(format!("{}/_sandbox/credential", sandbox.url()))
        .json(&serde_json::json!({"user": "other"}))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let other = client_for(sandbox.url(), other["token"].as_str().unwrap());
    let theirs = other.create_token("theirs", Expiration::Never).await.unwrap();
    let error = client.get_token(theirs.token.uuid).await.unwrap_err();
    assert_eq!(
        (error.kind, error.status),
        (ErrorKind::NotFound, Some(403)),
        "{error}"
    );

    let error = client_for(&common::closed_port_url(), "x")
        .list_tokens()
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unreachable);
    assert!(error.message.contains("cannot connect"), "{error}");
}

#[tokio::test]
async fn reads_are_retried_and_writes_are_not() {
    let sandbox = sandbox().await;
    let client = client(&sandbox);
    // (route, call, attempts the server should see)
    sandbox.set_faults(vec![fault(Route::Any, Failure::Status(503))]);
    let before = sandbox.hits();
    assert_eq!(
        client.list_tokens().await.unwrap_err().kind,
        ErrorKind::ServerError
    );
    assert_eq!(
        client
            .create_token("once", Expiration::Never)
            .await
            .unwrap_err()
            .kind,
        ErrorKind::ServerError
    );
    assert_eq!(
        client.delete_token(Uuid::new_v4()).await.unwrap_err().kind,
        ErrorKind::ServerError
    );
    assert!(client.author().await.is_err());
    let after = sandbox.hits();
    let seen =
        |route: Route| after.get(&route).copied().unwrap_or(0) - before.get(&route).copied().unwrap_or(0);
    assert_eq!(seen(Route::ListTokens), 3, "a read is tried three times");
    assert_eq!(seen(Route::Author), 3, "a read is tried three times");
    assert_eq!(seen(Route::CreateToken), 1, "a create is never repeated");
    assert_eq!(seen(Route::DeleteToken), 1, "a delete is never repeated");

    // A 500 is the server's own failure, not a passing one: not retried either.
    sandbox.set_faults(vec![fault(Route::ListTokens, Failure::Status(500))]);
    let before = sandbox.hits();
    assert!(client.list_tokens().await.is_err());
    assert_eq!(sandbox.hits()[&Route::ListTokens] - before[&Route::ListTokens], 1);
}

fn assert_no_secret(error: &ApiError, secret: &str) {
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(secret), "an error carries a token: {shown}");
}
