//! `POST /v1/agents/{agent_id}/lint`: checks an agent version before it is published — every finding of
//! the rule-book linter (with line and column when the text does not load), and whatever
//! publishing would refuse (tools, analysis, profile).

use axum::Json;
use axum::extract::{Path, State};
use callfunnel_ai::rulebook::{BookFormat, Lint, LintOptions, Severity, lint_text};
use callfunnel_data::control::AgentKind;
use serde::Serialize;
use utoipa::ToSchema;

use super::agents::{VersionSpec, spec_of};
use super::common::{Body, ErrorBody, store_err};
use crate::auth::{Caller, Role};
use crate::http::{ApiError, AppState};

#[derive(Serialize, ToSchema)]
pub struct LintReport {
    /// No errors: publishing this version would be accepted.
    pub ok: bool,
    /// Errors first. `at` is `line L, column C` for text that does not load, else a path
    /// such as `intent.book.reply`.
    #[schema(value_type = Vec<Object>)]
    pub lints: Vec<Lint>,
}

#[utoipa::path(post, path = "/v1/agents/{agent_id}/lint", tag = "agents", params(("agent_id" = String, Path)), request_body = VersionSpec, responses((status = 200, body = LintReport), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn lint(c: Caller, State(s): State<AppState>, Path(id): Path<String>, Body(b): Body<VersionSpec>) -> Result<Json<LintReport>, ApiError> {
    c.require(Role::Viewer)?;
    s.stores.control.agent(&c.tenant, &id).await.map_err(store_err)?;
    let spec = spec_of(&s, b)?;
    let mut lints = Vec::new();
    if spec.kind == AgentKind::Rulebook {
        lints = lint_text(&spec.body, BookFormat::Toml, &LintOptions::default()).1;
    } else if spec.body.trim().is_empty() {
        lints.push(Lint { severity: Severity::Error, at: "prompt".into(), message: "the system prompt is empty".into() });
    }
    if !lints.iter().any(|l| l.severity == Severity::Error) {
        if let Err(e) = crate::agents::AgentFile::from_version(&spec) {
            lints.insert(0, Lint { severity: Severity::Error, at: "agent".into(), message: e.to_string() });
        }
    }
    Ok(Json(LintReport { ok: !lints.iter().any(|l| l.severity == Severity::Error), lints }))
}
