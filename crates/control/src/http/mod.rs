//! The HTTP/WebSocket server: carrier webhooks and media streams, health, and the call API.

mod api;
mod error;
mod exotel;
mod health;
mod media;
mod outbound;
mod twilio;
mod twilio_auth;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use callfunnel_data::{FileTimeline, MemoryTimeline, TimelineStore};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use error::ApiError;

use crate::calls::{CallRegistry, Calls};
use callfunnel_ai::cloud::{EnvSecrets, SecretSource};

use crate::carriers::CarrierAuth;
use crate::config::Config;
use crate::providers::ProviderHub;
use crate::telephony_config::NumberTable;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub hub: Arc<ProviderHub>,
    pub store: Arc<dyn TimelineStore>,
    pub registry: Arc<CallRegistry>,
    pub calls: Arc<Calls>,
    pub carriers: Arc<CarrierAuth>,
    pub shutdown: CancellationToken,
}

impl AppState {
    pub fn new(config: Config, shutdown: CancellationToken, secrets: Arc<dyn SecretSource>, carriers: CarrierAuth) -> anyhow::Result<AppState> {
        let store: Arc<dyn TimelineStore> = match config.data.timeline.as_str() {
            "memory" => Arc::new(MemoryTimeline::default()),
            _ => Arc::new(FileTimeline::open(config.data.dir.join("timelines"))?),
        };
        let hub = Arc::new(ProviderHub::new(callfunnel_ai::models::ModelPaths::new(&config.models.dir), config.models.whisper_threads, config.agents.dir.clone(), config.providers.clone(), secrets));
        let registry = Arc::new(CallRegistry::default());
        let numbers = NumberTable::new(&config.numbers);
        let calls = Arc::new(Calls { config: config.clone(), hub: hub.clone(), store: store.clone(), registry: registry.clone(), numbers, shutdown: shutdown.clone() });
        Ok(AppState { config: Arc::new(config), hub, store, registry, calls, carriers: Arc::new(carriers), shutdown })
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
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(twilio::routes(state.clone()))
        .merge(exotel::routes())
        .merge(api::routes())
        .merge(outbound::routes())
        .layer(tower_http::limit::RequestBodyLimitLayer::new(64 * 1024))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
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
        let listener = TcpListener::bind(config.server.listen).await.map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.server.listen))?;
        let addr = listener.local_addr()?;
        let carriers = CarrierAuth::load(&config, secrets.as_ref()).await?;
        let state = AppState::new(config, shutdown.clone(), secrets, carriers)?;
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
