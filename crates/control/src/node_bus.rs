//! Requests about a call that runs on another node of the fleet. The API may reach any node
//! (nginx sends `/v1` to the least busy one), but a call is run by the node its media reached.
//! The hot state knows which node that is ([`HotState::call_node`]). Every node listens on its
//! own channel (`node--<node id>`) and answers on the channel named in the request. A node that
//! does not answer in time is reported as unreachable (504 `call_node_unreachable`); if it has
//! died, its call is gone too and its lease expires on its own.
//!
//! [`HotState::call_node`]: callfunnel_data::hot::HotState::call_node

use std::time::Duration;

use axum::http::StatusCode;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::http::{ApiError, AppState};

/// How long a forwarded request waits for the other node's answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

fn channel(node: &str) -> String {
    format!("node--{node}")
}

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    op: String,
    tenant: String,
    call_id: String,
    reply: String,
}

/// The node other than this one that runs `call_id`, if the hot state knows one.
pub async fn remote_node(s: &AppState, call_id: &str) -> Option<String> {
    match s.stores.hot.call_node(call_id).await {
        Ok(Some(n)) if n != s.stores.node_id => Some(n),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(call_id, error = %e, "hot state: cannot tell which node runs the call");
            None
        }
    }
}

/// Asks `node` to hang up `tenant`'s call and returns its answer.
pub async fn forward_hangup(s: &AppState, node: &str, tenant: &str, call_id: &str) -> Result<Value, ApiError> {
    let reply = format!("reply--{}", uuid::Uuid::new_v4().simple());
    let unavailable = |e: String| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "hot_state_unavailable", e);
    let mut answers = s.stores.hot.subscribe(&reply).await.map_err(|e| unavailable(e.to_string()))?;
    let req = Request { op: "hangup".into(), tenant: tenant.into(), call_id: call_id.into(), reply };
    s.stores.hot.publish(&channel(node), &json!(req)).await.map_err(|e| unavailable(e.to_string()))?;
    let Ok(Some(answer)) = tokio::time::timeout(ANSWER_WITHIN, answers.next()).await else {
        tracing::warn!(call_id, node, "the call's node did not answer a forwarded hang-up");
        return Err(ApiError::new(StatusCode::GATEWAY_TIMEOUT, "call_node_unreachable", format!("node `{node}` that runs call `{call_id}` did not answer within {ANSWER_WITHIN:?}")));
    };
    let status = answer["status"].as_u64().and_then(|c| StatusCode::from_u16(c as u16).ok()).unwrap_or(StatusCode::BAD_GATEWAY);
    if status.is_success() {
        let mut body = answer["body"].clone();
        body["node"] = json!(node);
        return Ok(body);
    }
    let code = known_code(answer["body"]["code"].as_str().unwrap_or_default());
    Err(ApiError::new(status, code, answer["body"]["message"].as_str().unwrap_or("the call's node refused").to_string()))
}

/// Error codes travel as text; the API's codes are static strings.
fn known_code(code: &str) -> &'static str {
    ["call_not_active", "carrier_error", "invalid_call_id"].into_iter().find(|c| *c == code).unwrap_or("call_node_error")
}

/// Answers the requests addressed to this node until shutdown.
pub async fn serve(s: AppState) {
    let node = s.stores.node_id.clone();
    let mut requests = match s.stores.hot.subscribe(&channel(&node)).await {
        Ok(r) => r,
        Err(e) => return tracing::error!(node, error = %e, "hot state: cannot listen for requests from other nodes"),
    };
    loop {
        let msg = tokio::select! {
            _ = s.shutdown.cancelled() => return,
            m = requests.next() => match m {
                Some(m) => m,
                None => return tracing::error!(node, "hot state: the request channel closed"),
            },
        };
        let req: Request = match serde_json::from_value(msg) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable request from another node");
                continue;
            }
        };
        let s = s.clone();
        tokio::spawn(async move {
            let result = match req.op.as_str() {
                "hangup" => crate::http::outbound::hangup_here(&s, &req.tenant, &req.call_id).await,
                other => Err(ApiError::bad_request("unknown_op", format!("unknown request `{other}`"))),
            };
            let answer = match result {
                Ok(body) => json!({"status": 200, "body": body}),
                Err(e) => json!({"status": e.status.as_u16(), "body": {"code": e.code, "message": e.message}}),
            };
            if let Err(e) = s.stores.hot.publish(&req.reply, &answer).await {
                tracing::warn!(call_id = req.call_id, error = %e, "answer to another node not sent");
            }
        });
    }
}
