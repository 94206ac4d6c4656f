//! The one error type of the HTTP API and its table of statuses.
//!
//! Every error body is `{"error": {"code": "...", "message": "..."}}`. Image errors keep the
//! core's codes; the service adds its own (`unauthorized`, `not_found`, `rate_limited`, ...).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use imgest::ErrorCode;

/// An error answered to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The stable snake_case code.
    pub code: &'static str,
    /// A human-readable message (never internal details for 5xx).
    pub message: String,
    /// Seconds to wait, for `rate_limited`.
    pub retry_after: Option<u64>,
}

/// The service's own codes, next to the core's [`ErrorCode`]s.
pub const SERVICE_CODES: &[&str] = &[
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "payload_too_large",
    "rate_limited",
    "unavailable",
    "idempotency_key_reused",
];

/// The HTTP status of a code: the one table of this binding.
pub fn status_for(code: &str) -> StatusCode {
    match code {
        // The core's codes.
        "unsupported_format" | "not_an_image" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "corrupt_input" => StatusCode::UNPROCESSABLE_ENTITY,
        "limit_exceeded" | "payload_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_options" | "bad_request" => StatusCode::BAD_REQUEST,
        "storage" => StatusCode::SERVICE_UNAVAILABLE,
        "encode_failed" | "internal" => StatusCode::INTERNAL_SERVER_ERROR,
        "timeout" => StatusCode::GATEWAY_TIMEOUT,
        "cancelled" => StatusCode::SERVICE_UNAVAILABLE,
        // The service's.
        "unauthorized" => StatusCode::UNAUTHORIZED,
        "forbidden" => StatusCode::FORBIDDEN,
        "not_found" => StatusCode::NOT_FOUND,
        "rate_limited" => StatusCode::TOO_MANY_REQUESTS,
        "unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        "idempotency_key_reused" => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new("unauthorized", message)
    }

    /// 404 for an image or job the caller cannot see.
    pub fn not_found(what: &str) -> ApiError {
        ApiError::new("not_found", format!("no such {what}"))
    }

    /// A 500 whose details are logged, not answered.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> ApiError {
        tracing::error!("{context}: {err}");
        ApiError::new("internal", "internal error")
    }
}

impl From<imgest::Error> for ApiError {
    fn from(err: imgest::Error) -> ApiError {
        match err.code() {
            ErrorCode::Storage => {
                tracing::error!("storage: {err}");
                ApiError::new("storage", "storage unavailable")
            }
            ErrorCode::Internal => ApiError::internal("core", err),
            code => ApiError::new(code.as_str(), err.to_string()),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> ApiError {
        ApiError::internal("database", err)
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// An error's code and message.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable snake_case code: the core's (`unsupported_format`, `not_an_image`,
    /// `corrupt_input`, `limit_exceeded`, …) or the service's (`unauthorized`, `forbidden`,
    /// `not_found`, `payload_too_large`, `rate_limited`, `bad_request`, `unavailable`,
    /// `idempotency_key_reused`).
    #[schema(example = "rate_limited")]
    pub code: String,
    /// For people; not stable.
    #[schema(example = "at most 50 uploads per hour")]
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut response = (status_for(self.code), Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.code == "unauthorized" {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_status() {
        let core: Vec<(&str, u16)> = ErrorCode::ALL
            .iter()
            .map(|c| (c.as_str(), status_for(c.as_str()).as_u16()))
            .collect();
        assert_eq!(
            core,
            [
                ("unsupported_format", 415),
                ("not_an_image", 415),
                ("corrupt_input", 422),
                ("limit_exceeded", 413),
                ("invalid_options", 400),
                ("encode_failed", 500),
                ("storage", 503),
                ("timeout", 504),
                ("cancelled", 503),
                ("internal", 500),
            ]
        );
        let service: Vec<u16> = SERVICE_CODES
            .iter()
            .map(|c| status_for(c).as_u16())
            .collect();
        assert_eq!(service, [400, 401, 403, 404, 413, 429, 503, 422]);
    }

    #[test]
    fn internal_details_stay_out_of_the_body() {
        let e = ApiError::internal("db", "disk I/O error at /secret/path");
        assert_eq!(e.message, "internal error");
        let e: ApiError = imgest::Error::Internal {
            detail: "boom".into(),
        }
        .into();
        assert_eq!((e.code, e.message.as_str()), ("internal", "internal error"));
    }
}
