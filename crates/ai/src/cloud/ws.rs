//! WebSocket connections to providers: a handshake with headers and a deadline, and errors
//! that say whether trying again can help (a 4xx at handshake — a bad key — cannot).

use std::time::Duration;

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Error as WsError};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::Secret;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a connection failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    /// The server answered the handshake with an HTTP error (`dg-error` etc. in `detail`).
    #[error("handshake refused: HTTP {status}{detail}")]
    Refused { status: u16, detail: String },
    #[error("connect timed out after {0:?}")]
    Timeout(Duration),
    #[error("connect failed: {0}")]
    Io(String),
}

impl ConnectError {
    /// Retrying cannot help (bad key, bad parameters): fail fast and fail over.
    pub fn is_permanent(&self) -> bool {
        matches!(self, ConnectError::Refused { status, .. } if (400..500).contains(status) && *status != 408 && *status != 429)
    }
}

/// Opens `url` with extra headers (secret values are only put on the wire, never logged).
pub async fn connect(url: &str, headers: &[(&str, HeaderOrSecret<'_>)], timeout: Duration) -> Result<Ws, ConnectError> {
    let mut req = url.into_client_request().map_err(|e| ConnectError::Io(format!("bad URL: {e}")))?;
    for (name, value) in headers {
        let v = match value {
            HeaderOrSecret::Plain(s) => HeaderValue::from_str(s),
            HeaderOrSecret::Secret(prefix, s) => HeaderValue::from_str(&format!("{prefix}{}", s.expose())),
        }
        .map_err(|_| ConnectError::Io(format!("header `{name}` has invalid characters")))?;
        let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| ConnectError::Io(e.to_string()))?;
        req.headers_mut().insert(name, v);
    }
    // A small read buffer (the default 128 KiB is zero-filled, so resident, per stream); a
    // larger message grows it to fit.
    let config = tungstenite::protocol::WebSocketConfig::default().max_message_size(Some(16 << 20)).max_frame_size(Some(16 << 20)).read_buffer_size(16 * 1024);
    match tokio::time::timeout(timeout, tokio_tungstenite::connect_async_with_config(req, Some(config), true)).await {
        Err(_) => Err(ConnectError::Timeout(timeout)),
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(WsError::Http(resp))) => {
            let status = resp.status().as_u16();
            let mut detail = String::new();
            for h in ["dg-error", "x-error"] {
                if let Some(v) = resp.headers().get(h).and_then(|v| v.to_str().ok()) {
                    detail = format!(" ({v})");
                }
            }
            if detail.is_empty()
                && let Some(body) = resp.body().as_ref()
            {
                let text = String::from_utf8_lossy(body);
                detail = format!(": {}", text.chars().take(200).collect::<String>());
            }
            Err(ConnectError::Refused { status, detail })
        }
        Ok(Err(e)) => Err(ConnectError::Io(e.to_string())),
    }
}

pub enum HeaderOrSecret<'a> {
    Plain(&'a str),
    /// `prefix` + the secret, e.g. `("Token ", key)`.
    Secret(&'a str, &'a Secret),
}
