//! The browser's media WebSocket, `/web/media/{call_id}/{call_token}`: the third transport
//! beside Twilio and Exotel (the call and its token come from `POST /v1/calls/web`).

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use callfunnel_media::web::WebCodec;

use super::AppState;
use super::media::{StreamAuth, upgrade};

pub fn routes() -> Router<AppState> {
    Router::new().route("/web/media/{call_id}/{token}", get(stream))
}

async fn stream(State(s): State<AppState>, Path((call_id, token)): Path<(String, String)>, ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>) -> Response {
    upgrade(&s, call_id, StreamAuth::CallToken(Some(&token)), ws, WebCodec::default())
}
