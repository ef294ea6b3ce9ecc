//! The HTTP/WebSocket server: carrier webhooks and media streams, health, and the call API.

mod body_limit;
mod console;
mod drain;
mod dev_oidc;
mod dev_sign_in;
mod error;
mod exotel;
mod health;
mod media;
mod metrics;
pub mod outbound;
mod recordings;
mod twilio;
mod twilio_auth;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use callfunnel_data::TimelineStore;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use error::ApiError;

use crate::call_data::CallData;
use crate::calls::{CallRegistry, Calls};
use crate::store_secrets::StoreSecrets;
use crate::stores::Stores;
use callfunnel_ai::cloud::{EnvSecrets, SecretSource};

use crate::carriers::CarrierAuth;
use crate::config::Config;
use crate::providers::ProviderHub;
use crate::telephony_config::NumberTable;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub auth: Arc<crate::auth::Auth>,
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    pub dialer: Arc<crate::campaigns::Dialer>,
    pub knowledge: crate::knowledge::Knowledge,
    pub hub: Arc<ProviderHub>,
    pub store: Arc<dyn TimelineStore>,
    pub stores: Stores,
    pub registry: Arc<CallRegistry>,
    pub calls: Arc<Calls>,
    pub carriers: Arc<CarrierAuth>,
    pub shutdown: CancellationToken,
    /// Cancelled when the node starts draining (SIGTERM): not ready, no new calls.
    pub draining: CancellationToken,
    /// Timeline events as they are written here (the console's live views).
    pub live: crate::live::LiveFeed,
}

impl AppState {
    pub fn new(config: Config, shutdown: CancellationToken, secrets: Arc<dyn SecretSource>, carriers: CarrierAuth, stores: Stores) -> anyhow::Result<AppState> {
        // every timeline write of this node (calls, carrier callbacks, analyses, recordings)
        // also reaches the live feed
        // (in a fleet, the other nodes' too: with a shared hot state)
        let live = if config.stores.redis_url.is_some() {
            crate::live::LiveFeed::fleet(stores.hot.clone(), &stores.node_id, shutdown.clone())
        } else {
            crate::live::LiveFeed::default()
        };
        let mut stores = stores;
        stores.timeline = Arc::new(crate::live::LiveTimeline::new(stores.timeline.clone(), live.clone()));
        let store = stores.timeline.clone();
        let hub = Arc::new(ProviderHub::new(callfunnel_ai::models::ModelPaths::new(&config.models.dir), config.models.whisper_threads, config.agents.dir.clone(), config.providers.clone(), secrets).with_tools(&config.tools)?.with_control(stores.control.clone()).with_vectors(stores.vectors.clone()));
        let registry = Arc::new(CallRegistry::default());
        registry.plans.share_through(stores.hot.clone());
        let auth = Arc::new(crate::auth::Auth::open(&config, stores.control.clone())?);
        let sender: Arc<dyn crate::webhooks::Sender> = Arc::new(crate::tool_net::webhook_sender(&config)?);
        let webhooks = crate::webhooks::Webhooks::start(stores.control.clone(), sender, std::time::Duration::from_secs(1), shutdown.clone());
        let numbers = NumberTable::new(&config.numbers);
        let data = CallData {
            stores: stores.clone(),
            spool: config.data.dir.join("spool").join("recordings"),
            keep_local: config.stores.s3.as_ref().is_some_and(|s| s.keep_local),
            background: tokio_util::task::TaskTracker::new(),
        };
        let post_call = crate::analysis::PostCall::start(stores.clone(), hub.clone(), webhooks.clone(), std::time::Duration::from_secs(1), config.analysis.concurrency, shutdown.clone());
        let calls = Arc::new(Calls { config: config.clone(), hub: hub.clone(), store: store.clone(), data, registry: registry.clone(), numbers, webhooks: webhooks.clone(), post_call, shutdown: shutdown.clone() });
        let dialer = Arc::new(crate::campaigns::Dialer::default());
        let knowledge = crate::knowledge::Knowledge::new(stores.clone(), hub.clone());
        Ok(AppState { config: Arc::new(config), auth, webhooks, dialer, knowledge, hub, store, stores, registry, calls, carriers: Arc::new(carriers), shutdown, draining: CancellationToken::new(), live })
    }
}

impl AppState {
    /// Our public URL for `path` (carriers call it): `https://PUBLIC_HOST/path` (`http` when the
    /// WebSocket scheme is `ws`, in local tests).
    pub fn public_http(&self, path: &str) -> String {
        let scheme = if self.config.server.public_ws_scheme == "wss" { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.config.server.public_host)
    }

    /// Our public WebSocket URL for `path`.
    pub fn public_ws(&self, path: &str) -> String {
        format!("{}://{}{path}", self.config.server.public_ws_scheme, self.config.server.public_host)
    }

    /// The media stream URL of a call this server created, with its call token in the path:
    /// `wss://HOST/CARRIER/media/CALL_ID/TOKEN` (Exotel adds `?sample-rate=`).
    pub fn media_url(&self, carrier: &str, call_id: &str, sample_rate: Option<u32>) -> String {
        let token = self.auth.call_tokens.mint(call_id);
        let q = sample_rate.map(|r| format!("?sample-rate={r}")).unwrap_or_default();
        self.public_ws(&format!("/{carrier}/media/{call_id}/{token}{q}"))
    }

    /// Refuses a webhook URL the tool network policy would not let us reach.
    pub async fn webhook_url_allowed(&self, url: &str) -> Result<(), ApiError> {
        crate::tool_net::check_url(&self.config, url).await.map_err(|e| ApiError::bad_request("url_not_allowed", e))
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(metrics::routes())
        .merge(twilio::routes(state.clone()))
        .merge(exotel::routes())
        .merge(crate::api::routes())
        .merge(dev_oidc::routes())
        .merge(dev_sign_in::routes())
        .merge(console::routes())
        .merge(web::routes())
        .merge(recordings::routes())
        .layer(axum::middleware::from_fn(body_limit::body_limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), drain::refuse_new_calls))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Keeps this node's active-call leases alive; if the node dies they expire on their own.
async fn heartbeat(stores: Stores, lease_ttl: std::time::Duration, shutdown: CancellationToken) {
    let every = lease_ttl / 3;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = stores.hot.heartbeat(&stores.node_id).await {
            tracing::warn!(error = %e, "hot state heartbeat failed");
        }
    }
}

/// Applies each tenant's retention to recordings: a minute after start, then every 6 hours.
async fn retention(stores: Stores, shutdown: CancellationToken) {
    let mut wait = std::time::Duration::from_secs(60);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        if let Err(e) = stores.sweep_retention().await {
            tracing::warn!(error = %e, "retention sweep failed");
        }
        wait = std::time::Duration::from_secs(6 * 3600);
    }
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub state: AppState,
    pub task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Binds `config.server.listen` (port 0 picks a free port) and serves until `shutdown`.
    pub async fn start(config: Config, shutdown: CancellationToken) -> anyhow::Result<Server> {
        Self::start_with(config, shutdown, Arc::new(EnvSecrets)).await
    }

    /// As [`Server::start`], with provider keys from `secrets`.
    pub async fn start_with(config: Config, shutdown: CancellationToken, secrets: Arc<dyn SecretSource>) -> anyhow::Result<Server> {
        let stores = Stores::open(&config).await?;
        Self::start_with_stores(config, shutdown, secrets, stores).await
    }

    /// As [`Server::start_with`], on stores opened by the caller.
    pub async fn start_with_stores(config: Config, shutdown: CancellationToken, secrets: Arc<dyn SecretSource>, stores: Stores) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(config.server.listen).await.map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.server.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(node = %stores.node_id, backends = ?stores.backends, "data plane ready");
        let secrets: Arc<dyn SecretSource> = Arc::new(StoreSecrets { store: stores.secrets.clone(), fallback: secrets });
        let carriers = CarrierAuth::load(&config, secrets.as_ref()).await?;
        let state = AppState::new(config, shutdown.clone(), secrets, carriers, stores.clone())?;
        tokio::spawn(heartbeat(stores.clone(), state.config.stores.lease_ttl(), shutdown.clone()));
        tokio::spawn(retention(stores, shutdown.clone()));
        tokio::spawn(crate::node_bus::serve(state.clone()));
        tokio::spawn(state.dialer.clone().run(state.clone(), std::time::Duration::from_millis(state.config.campaigns.tick_ms.max(100)), shutdown.clone()));
        if state.config.server.preload_models && state.hub.missing().is_empty() {
            let hub = state.hub.clone();
            tokio::spawn(async move {
                if let Err(e) = hub.models().await {
                    tracing::error!(error = %e, "model preload failed");
                }
            });
        }
        let app = router(state.clone());
        let stop = shutdown.clone();
        let task = tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await });
        tracing::info!(%addr, "listening");
        Ok(Server { addr, state, task })
    }
}
