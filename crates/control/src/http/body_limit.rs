//! Request body limits: 64 KiB for every route but document uploads (POST/PUT under
//! `/v1/knowledge-bases/{id}/documents`), which take a file of up to 16 MiB. A declared length
//! over the limit is refused at once (413, `body_too_large`); a body that runs past it fails
//! when it is read.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header::CONTENT_LENGTH};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::api::knowledge::MAX_FILE_BYTES;

pub const DEFAULT_LIMIT: usize = 64 * 1024;

/// The limit for a request: uploads get the file limit plus room for the envelope.
pub fn limit_for(method: &Method, path: &str) -> usize {
    let upload = matches!(*method, Method::POST | Method::PUT) && path.starts_with("/v1/knowledge-bases/") && path.contains("/documents");
    if upload { MAX_FILE_BYTES + DEFAULT_LIMIT } else { DEFAULT_LIMIT }
}

pub async fn body_limit(req: Request, next: Next) -> Response {
    let limit = limit_for(req.method(), req.uri().path());
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("request bodies here are limited to {limit} bytes")).into_response();
    }
    let (parts, body) = req.into_parts();
    next.run(Request::from_parts(parts, Body::new(http_body_util::Limited::new(body, limit)))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_get_the_file_limit_and_nothing_else_does() {
        assert_eq!(limit_for(&Method::POST, "/v1/knowledge-bases/kb1/documents"), MAX_FILE_BYTES + DEFAULT_LIMIT);
        assert_eq!(limit_for(&Method::PUT, "/v1/knowledge-bases/kb1/documents/d1"), MAX_FILE_BYTES + DEFAULT_LIMIT);
        assert_eq!(limit_for(&Method::GET, "/v1/knowledge-bases/kb1/documents"), DEFAULT_LIMIT);
        assert_eq!(limit_for(&Method::POST, "/v1/agents"), DEFAULT_LIMIT);
        assert_eq!(limit_for(&Method::POST, "/twilio/voice"), DEFAULT_LIMIT);
    }
}
