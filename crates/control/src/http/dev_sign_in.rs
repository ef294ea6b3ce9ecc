//! The built-in issuer's browser sign-in (`[auth] mode = "dev"`): `ISSUER/auth` shows a sign-in
//! form and answers with a one-time code, `ISSUER/token` trades it (with the PKCE verifier) for
//! an access token — the same authorization-code + PKCE flow the console runs against Keycloak.

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, AppState};
use crate::auth::Role;
use crate::auth::sign_in::{CONSOLE_CLIENT_ID, Grant, RedeemError};

/// Access tokens from the sign-in live this long (the console signs in again after).
const TOKEN_TTL_SECS: i64 = 3600;

pub fn routes() -> Router<AppState> {
    Router::new().route("/dev/oidc/auth", get(form).post(submit)).route("/dev/oidc/token", post(token))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AuthRequest {
    response_type: String,
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    code_challenge_method: String,
    state: String,
    nonce: Option<String>,
    scope: String,
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(flatten)]
    req: AuthRequest,
    username: String,
    password: String,
    tenant: String,
    role: String,
}

fn page(status: StatusCode, body: String) -> Response {
    let csp = "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'";
    (status, [(header::CONTENT_SECURITY_POLICY, csp), (header::CACHE_CONTROL, "no-store")], Html(body)).into_response()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// Checks the request; an error is shown on our page, never sent to an unchecked redirect.
fn check(s: &AppState, headers: &HeaderMap, r: &AuthRequest) -> Result<(), String> {
    if s.auth.sign_in.is_none() {
        return Err("browser sign-in is off: the server uses an external issuer ([auth] mode = \"oidc\")".into());
    }
    if r.client_id != CONSOLE_CLIENT_ID {
        return Err(format!("unknown client_id {:?} (the console is {CONSOLE_CLIENT_ID})", r.client_id.chars().take(80).collect::<String>()));
    }
    let uri = url::Url::parse(&r.redirect_uri).map_err(|_| "redirect_uri is not a URL".to_string())?;
    // Back to the console on this server: its public address, or the host the browser used
    // to reach this page (same origin, so not an open redirect).
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let authority = match uri.port() {
        Some(p) => format!("{}:{p}", uri.host_str().unwrap_or_default()),
        None => uri.host_str().unwrap_or_default().to_string(),
    };
    let ours = authority == s.config.server.public_host || authority == host;
    if !matches!(uri.scheme(), "http" | "https") || !ours || !uri.path().starts_with("/console/") || uri.fragment().is_some() {
        return Err("redirect_uri must be this server's /console/ page".into());
    }
    if r.response_type != "code" {
        return Err("response_type must be code".into());
    }
    if r.code_challenge_method != "S256" || r.code_challenge.len() != 43 {
        return Err("PKCE is required: code_challenge (43 characters) with code_challenge_method=S256".into());
    }
    Ok(())
}

fn error_page(e: &str) -> Response {
    page(StatusCode::BAD_REQUEST, format!("<!doctype html><title>Sign-in error</title><h1>Sign-in error</h1><p role=\"alert\">{}</p>", esc(e)))
}

fn form_page(s: &AppState, r: &AuthRequest, error: Option<&str>, username: &str, tenant: &str, role: &str) -> String {
    let hidden: String = [
        ("response_type", &r.response_type),
        ("client_id", &r.client_id),
        ("redirect_uri", &r.redirect_uri),
        ("code_challenge", &r.code_challenge),
        ("code_challenge_method", &r.code_challenge_method),
        ("state", &r.state),
        ("scope", &r.scope),
    ]
    .iter()
    .map(|(k, v)| format!(r#"<input type="hidden" name="{k}" value="{}">"#, esc(v)))
    .chain(r.nonce.iter().map(|n| format!(r#"<input type="hidden" name="nonce" value="{}">"#, esc(n))))
    .collect();
    let roles: String = Role::ALL
        .iter()
        .map(|x| format!(r#"<option value="{0}"{1}>{0}</option>"#, x.as_str(), if x.as_str() == role { " selected" } else { "" }))
        .collect();
    let err = error.map(|e| format!(r#"<p class="error" role="alert" id="error">{}</p>"#, esc(e))).unwrap_or_default();
    let pw_file = s.config.data.dir.join("auth").join("dev-password");
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · callfunnel</title><link rel="stylesheet" href="/console/assets/app.css"></head>
<body class="signin"><main><h1>Sign in to callfunnel</h1>
<p class="hint">Built-in development issuer. The password is in <code>{pw}</code>.</p>{err}
<form method="post" action="/dev/oidc/auth">{hidden}
<label for="username">User name</label><input id="username" name="username" autocomplete="username" required value="{user}">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required{af}>
<label for="tenant">Tenant</label><input id="tenant" name="tenant" value="{tenant}">
<label for="role">Role</label><select id="role" name="role">{roles}</select>
<button type="submit">Sign in</button></form></main></body></html>"#,
        pw = esc(&pw_file.display().to_string()),
        user = esc(username),
        tenant = esc(tenant),
        af = if error.is_some() { " autofocus" } else { "" },
    )
}

async fn form(State(s): State<AppState>, headers: HeaderMap, Query(r): Query<AuthRequest>) -> Response {
    if let Err(e) = check(&s, &headers, &r) {
        return error_page(&e);
    }
    page(StatusCode::OK, form_page(&s, &r, None, "admin", &s.config.agents.default_tenant, "tenant-admin"))
}

async fn submit(State(s): State<AppState>, headers: HeaderMap, Form(f): Form<SignInForm>) -> Response {
    if let Err(e) = check(&s, &headers, &f.req) {
        return error_page(&e);
    }
    let sign_in = s.auth.sign_in.as_ref().expect("checked");
    let again = |msg: &str| page(StatusCode::UNAUTHORIZED, form_page(&s, &f.req, Some(msg), &f.username, &f.tenant, &f.role));
    if !sign_in.password_ok(&f.password) {
        tracing::warn!(username = %f.username.chars().take(64).collect::<String>(), "console sign-in refused: wrong password");
        return again("Wrong user name or password.");
    }
    let Some(role) = Role::parse(&f.role) else { return again("Choose a role.") };
    let username = f.username.trim();
    if username.is_empty() || username.len() > 64 {
        return again("The user name must be 1 to 64 characters.");
    }
    let tenant = Some(f.tenant.trim().to_string()).filter(|t| !t.is_empty());
    match &tenant {
        Some(t) if callfunnel_data::check_id(t).is_err() => return again("The tenant id may hold only letters, digits, - and _."),
        None if role != Role::PlatformAdmin => return again("Name a tenant (only a platform admin acts for none)."),
        _ => {}
    }
    let grant = Grant { client_id: f.req.client_id.clone(), redirect_uri: f.req.redirect_uri.clone(), challenge: f.req.code_challenge.clone(), subject: username.to_string(), tenant, role, nonce: f.req.nonce.clone() };
    let code = sign_in.issue(grant);
    let mut to = url::Url::parse(&f.req.redirect_uri).expect("checked");
    to.query_pairs_mut().append_pair("code", &code).append_pair("state", &f.req.state);
    Redirect::to(to.as_str()).into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TokenRequest {
    grant_type: String,
    code: String,
    redirect_uri: String,
    client_id: String,
    code_verifier: String,
}

fn oauth_error(error: &str, description: &str) -> Response {
    (StatusCode::BAD_REQUEST, [(header::CACHE_CONTROL, "no-store")], Json(json!({"error": error, "error_description": description}))).into_response()
}

async fn token(State(s): State<AppState>, Form(t): Form<TokenRequest>) -> Result<Response, ApiError> {
    let (Some(sign_in), Some(dev)) = (s.auth.sign_in.as_ref(), s.auth.dev.as_ref()) else {
        return Err(ApiError::not_found("route_not_found", "the built-in issuer is off ([auth] mode = \"oidc\")"));
    };
    if t.grant_type != "authorization_code" {
        return Ok(oauth_error("unsupported_grant_type", "only authorization_code"));
    }
    let g = match sign_in.redeem(&t.code, &t.client_id, &t.redirect_uri, &t.code_verifier) {
        Ok(g) => g,
        Err(RedeemError::InvalidGrant(why)) => return Ok(oauth_error("invalid_grant", why)),
    };
    let now = chrono::Utc::now().timestamp();
    let tenant = g.tenant.as_deref().map(|t| (s.config.auth.tenant_claim.as_str(), t));
    let access = dev.token_for(&g.client_id, &g.subject, tenant, &[g.role.as_str()], &s.config.auth.audience, TOKEN_TTL_SECS);
    let mut id = json!({"iss": dev.issuer, "sub": g.subject, "aud": g.client_id, "iat": now, "exp": now + TOKEN_TTL_SECS, "preferred_username": g.subject});
    if let Some(t) = &g.tenant {
        id["tenant_id"] = json!(t);
    }
    if let Some(n) = &g.nonce {
        id["nonce"] = json!(n);
    }
    tracing::info!(subject = %g.subject, tenant = ?g.tenant, role = g.role.as_str(), "console sign-in");
    let body = json!({"access_token": access, "id_token": dev.sign(&id), "token_type": "Bearer", "expires_in": TOKEN_TTL_SECS, "scope": "openid"});
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}
