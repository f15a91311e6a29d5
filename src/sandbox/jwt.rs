//! The token value: an HS512 JWT byte-for-byte shaped like the real backend's.
//!
//! Hand-rolled on hmac/sha2/base64 because the header must be exactly
//! `{"alg":"HS512","typ":"JWT"}` (jsonwebtoken writes `typ` first) and the claims exactly
//! `{"uuid":..,"expires":..}` in that order; clients check the prefix and the lengths.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha512;

type HmacSha512 = Hmac<Sha512>;

/// Compact header JSON; its base64url form is the well-known `eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9`.
const HEADER: &str = r#"{"alg":"HS512","typ":"JWT"}"#;

/// Builds the signed token for `uuid`, with the expiry claim in naive UTC at minute precision.
pub(crate) fn encode(key: &[u8], uuid: &str, expires: Option<DateTime<Utc>>) -> String {
    // serde_json keeps the field order of `json!` only with preserve_order, so write it by hand.
    let expires = match expires {
        Some(at) => format!("\"{}\"", at.format("%Y-%m-%dT%H:%M")),
        None => "null".to_owned(),
    };
    let uuid = serde_json::Value::String(uuid.to_owned()).to_string();
    let claims = format!(r#"{{"uuid":{uuid},"expires":{expires}}}"#);
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = URL_SAFE_NO_PAD.encode(sign(key, signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

/// Returns the `uuid` claim if the token is well formed and signed with `key`.
/// Expiry is deliberately not read from the claim: like the real backend, the database decides.
pub(crate) fn verify(key: &[u8], token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    let mut mac = HmacSha512::new_from_slice(key).ok()?;
    mac.update(header.as_bytes());
    mac.update(b".");
    mac.update(claims.as_bytes());
    // verify_slice compares in constant time.
    mac.verify_slice(&signature).ok()?;

    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()?;
    claims.get("uuid")?.as_str().map(str::to_owned)
}

fn sign(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an empty MAC input
    // rather than panic if that ever changed.
    match HmacSha512::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn shape_matches_the_real_tokens() {
        let key = [7u8; 64];
        let uuid = "62b82885-6cd8-4b07-a0c2-5fc239c22ffa";
        let at = Utc.with_ymd_and_hms(2026, 9, 3, 17, 50, 43).single();
        let with = encode(&key, uuid, at);
        let without = encode(&key, uuid, None);
        assert_eq!(with.len(), 226);
        assert_eq!(without.len(), 207);
        assert!(with.starts_with("eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9."));
        assert_eq!(verify(&key, &with).as_deref(), Some(uuid));
        assert_eq!(verify(&[8u8; 64], &with), None);
        assert_eq!(verify(&key, "a.b"), None);
    }
}
