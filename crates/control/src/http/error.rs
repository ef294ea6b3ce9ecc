//! API errors with stable machine-readable codes: `{"message", "code", "type"}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// The JSON body: `{"message", "code", "type"}`.
    pub fn body(&self) -> serde_json::Value {
        let kind = if self.status.is_server_error() {
            "internal"
        } else if matches!(self.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            "auth"
        } else {
            "invalid_request"
        };
        serde_json::json!({"message": self.message, "code": self.code, "type": kind})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(self.body())).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            let v = format!("Bearer error=\"invalid_token\", error_description=\"{}\"", self.code);
            if let Ok(v) = axum::http::HeaderValue::from_str(&v) {
                r.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, v);
            }
        }
        r
    }
}
