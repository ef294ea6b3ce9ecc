//! The REST API `/v1`: JSON in and out, every route authenticated (a Keycloak or built-in
//! issuer JWT, or an API key) and tenant-scoped, every error `{message, code, type}` with a
//! stable code. The OpenAPI 3.1 document is generated from the handlers' annotations and served
//! at `/v1/openapi.json`.

pub mod agent_lint;
pub mod agents;
pub mod billing;
pub mod call_events;
pub mod calls;
pub mod campaigns;
pub mod common;
pub mod keys;
pub mod knowledge;
pub mod numbers;
pub mod tenants;
pub mod web_calls;
pub mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::{ApiError, AppState};

#[derive(OpenApi)]
#[openapi(
    info(title = "callfunnel API", version = "1", description = "Voice agents on real phone calls. Authenticate with `Authorization: Bearer TOKEN` (an OIDC access token or an API key). Platform admins name the tenant they act for with `X-Tenant-Id`."),
    modifiers(&Security),
    components(schemas(common::ErrorBody)),
    tags((name = "calls"), (name = "agents"), (name = "numbers"), (name = "knowledge"), (name = "campaigns"), (name = "billing"), (name = "webhooks"), (name = "api-keys"), (name = "tenants"))
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme("bearer", SecurityScheme::Http(Http::builder().scheme(HttpAuthScheme::Bearer).bearer_format("JWT or API key").build()));
        doc.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new("bearer", Vec::<String>::new())]);
    }
}

/// The routes and their OpenAPI document.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(calls::list, calls::place))
        .routes(routes!(calls::live))
        .routes(routes!(call_events::events))
        .routes(routes!(web_calls::create))
        .routes(routes!(calls::get_one))
        .routes(routes!(calls::recording))
        .routes(routes!(calls::analysis))
        .routes(routes!(calls::hangup))
        .routes(routes!(agents::list, agents::create))
        .routes(routes!(agents::get_one, agents::update, agents::delete))
        .routes(routes!(agents::versions, agents::publish))
        .routes(routes!(agents::version))
        .routes(routes!(agent_lint::lint))
        .routes(routes!(numbers::list))
        .routes(routes!(numbers::bind, numbers::release))
        .routes(routes!(knowledge::list, knowledge::create))
        .routes(routes!(knowledge::documents, knowledge::upload))
        .routes(routes!(knowledge::delete_document, knowledge::replace))
        .routes(routes!(knowledge::search))
        .routes(routes!(campaigns::list, campaigns::create))
        .routes(routes!(campaigns::get_one))
        .routes(routes!(campaigns::contacts, campaigns::add_contacts))
        .routes(routes!(campaigns::start))
        .routes(routes!(campaigns::pause))
        .routes(routes!(campaigns::resume))
        .routes(routes!(campaigns::cancel))
        .routes(routes!(billing::usage))
        .routes(routes!(billing::invoice))
        .routes(routes!(webhooks::list, webhooks::create))
        .routes(routes!(webhooks::delete))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(keys::list, keys::create))
        .routes(routes!(keys::revoke))
        .routes(routes!(tenants::list, tenants::create))
        .routes(routes!(tenants::get_one))
        .routes(routes!(tenants::set_plan))
        .split_for_parts()
}

pub fn routes() -> Router<AppState> {
    let (router, doc) = api();
    let doc = Arc::new(doc.to_json().expect("the OpenAPI document serializes"));
    router
        .route("/v1/openapi.json", get(move || { let d = doc.clone(); async move { ([("content-type", "application/json")], d.as_str().to_owned()) } }))
        .route("/v1/me", get(me))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// Who the token says you are.
async fn me(who: crate::auth::Principal) -> axum::Json<crate::auth::Principal> {
    axum::Json(who)
}

async fn not_found(uri: axum::http::Uri) -> impl IntoResponse {
    ApiError::not_found("route_not_found", format!("no route {}", uri.path().chars().take(200).collect::<String>()))
}

async fn method_not_allowed() -> impl IntoResponse {
    ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method")
}
