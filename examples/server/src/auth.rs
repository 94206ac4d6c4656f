//! Bearer JWTs (HS256): the claims, signing, and the extractor that checks them.

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum_extra::headers::authorization::Bearer;
use axum_extra::headers::{Authorization, HeaderMapExt};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::ApiError;

/// A token's claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry (seconds since the epoch).
    pub exp: u64,
    /// Issued at (seconds since the epoch). Optional, as in the tokens of the service imgest
    /// replaces; when present it must not lie in the future.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// `admin` may read the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// Signs a token for `user`, valid for `ttl_secs`.
pub fn sign(secret: &str, user: &str, ttl_secs: u64, role: Option<&str>) -> Result<String, String> {
    if user.is_empty() || user.len() > 128 || user.chars().any(char::is_control) {
        return Err("the user name must be 1 to 128 printable characters".into());
    }
    let now = crate::db::now_ms() as u64 / 1000;
    let claims = Claims {
        sub: user.to_string(),
        exp: now + ttl_secs,
        iat: Some(now),
        role: role.map(str::to_string),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| e.to_string())
}

/// Seconds of clock difference tolerated on `exp` and `iat`.
const LEEWAY_SECS: u64 = 5;

/// Checks a token: HS256 only (so `alg: none` and other algorithms fail), signature, `sub` and
/// `exp` required, expiry, and `iat` (when present) not in the future.
pub fn verify(secret: &str, token: &str) -> Result<Claims, String> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = LEEWAY_SECS;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let claims = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map(|data| data.claims)
    .map_err(|e| e.to_string())?;
    let now = crate::db::now_ms() as u64 / 1000;
    if claims.iat.is_some_and(|iat| iat > now + LEEWAY_SECS) {
        return Err("issued in the future (iat)".into());
    }
    Ok(claims)
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct User {
    /// Its id (the token's `sub`).
    pub id: String,
    /// Whether the token carries `role: admin`.
    pub admin: bool,
    /// The client's address.
    pub client: Option<String>,
}

/// The client's address of a request, when the server recorded it.
pub fn client_of(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
}

/// Authenticates a request from its headers: the bearer token, checked with [`verify`]. A
/// failure is counted and audited, then answered 401.
pub async fn authenticate(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    what: &str,
    client: Option<String>,
) -> Result<User, ApiError> {
    // The scheme in any case, as RFC 9110 has it.
    let token = headers.typed_get::<Authorization<Bearer>>();
    let outcome = match &token {
        None => Err("missing bearer token".to_string()),
        Some(t) => verify(&state.config.jwt_secret, t.token().trim()),
    };
    match outcome {
        Ok(claims) => Ok(User {
            admin: claims.role.as_deref() == Some("admin"),
            id: claims.sub,
            client,
        }),
        Err(why) => {
            state.metrics.auth_failures.inc();
            let _ = crate::db::audit(
                &state.db,
                None,
                "auth_failure",
                None,
                client.as_deref(),
                "rejected",
                Some(&format!("{what}: {why}")),
            )
            .await;
            Err(ApiError::unauthorized(if token.is_none() {
                "missing bearer token"
            } else {
                "invalid or expired token"
            }))
        }
    }
}

impl FromRequestParts<AppState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<User, ApiError> {
        let what = format!("{} {}", parts.method, parts.uri.path());
        authenticate(state, &parts.headers, &what, client_of(parts)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "test-secret-0123456789";

    #[test]
    fn round_trip_and_rejections() {
        let t = sign(SECRET, "alice", 60, Some("admin")).unwrap();
        let c = verify(SECRET, &t).unwrap();
        assert_eq!(
            (c.sub.as_str(), c.role.as_deref()),
            ("alice", Some("admin"))
        );
        assert!(verify("another-secret-0123456", &t).is_err());
        // Expired: signed with a past expiry.
        let now = crate::db::now_ms() as u64 / 1000;
        let old = Claims {
            sub: "a".into(),
            exp: now - 120,
            iat: Some(now - 180),
            role: None,
        };
        let t = jsonwebtoken::encode(
            &Header::default(),
            &old,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert!(verify(SECRET, &t).is_err());
        assert!(sign(SECRET, "", 60, None).is_err());
    }

    /// Encodes arbitrary claims with HS256.
    fn token(claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn sub_and_exp_suffice_and_iat_is_checked_when_present() {
        let now = crate::db::now_ms() as u64 / 1000;
        // The original service's tokens: `sub` and `exp`, nothing else.
        let c = verify(
            SECRET,
            &token(serde_json::json!({"sub": "u1", "exp": now + 60})),
        )
        .unwrap();
        assert_eq!((c.sub.as_str(), c.iat, c.role), ("u1", None, None));
        let c = verify(
            SECRET,
            &token(serde_json::json!({"sub": "u1", "exp": now + 60, "iat": now - 10})),
        )
        .unwrap();
        assert_eq!(c.iat, Some(now - 10));
        // Issued in the future, beyond the leeway.
        let e = verify(
            SECRET,
            &token(serde_json::json!({"sub": "u1", "exp": now + 600, "iat": now + 300})),
        )
        .unwrap_err();
        assert!(e.contains("iat"), "{e}");
        // `exp` and `sub` stay required.
        assert!(verify(SECRET, &token(serde_json::json!({"sub": "u1"}))).is_err());
        assert!(verify(SECRET, &token(serde_json::json!({"exp": now + 60}))).is_err());
        // A malformed iat is refused, not ignored.
        assert!(
            verify(
                SECRET,
                &token(serde_json::json!({"sub": "u1", "exp": now + 60, "iat": "yesterday"}))
            )
            .is_err()
        );
    }
}
