//! Bearer JWTs (HS256): the claims, signing, and the extractor that checks them.

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
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
    /// Issued at (seconds since the epoch).
    pub iat: u64,
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
        iat: now,
        role: role.map(str::to_string),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| e.to_string())
}

/// Checks a token: HS256 only (so `alg: none` and other algorithms fail), signature, expiry.
pub fn verify(secret: &str, token: &str) -> Result<Claims, String> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 5;
    validation.set_required_spec_claims(&["exp", "sub"]);
    jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map(|data| data.claims)
    .map_err(|e| e.to_string())
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

impl FromRequestParts<AppState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<User, ApiError> {
        let client = client_of(parts);
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let outcome = match token {
            None => Err("missing bearer token".to_string()),
            Some(t) => verify(&state.config.jwt_secret, t),
        };
        match outcome {
            Ok(claims) => Ok(User {
                admin: claims.role.as_deref() == Some("admin"),
                id: claims.sub,
                client,
            }),
            Err(why) => {
                state.metrics.auth_failures.inc();
                let path = parts.uri.path().to_string();
                let _ = crate::db::audit(
                    &state.db,
                    None,
                    "auth_failure",
                    None,
                    client.as_deref(),
                    "rejected",
                    Some(&format!("{} {path}: {why}", parts.method)),
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
            iat: now - 180,
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
}
