//! PostgreSQL backend of the control store.

use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};

use super::types::*;
use super::delegate::delegate_control_store;
use super::{sql_access::sql_access, sql_agents::sql_agents, sql_billing::sql_billing};
use super::{sql_campaigns::sql_campaigns, sql_content::sql_content, sql_dialer::sql_dialer, sql_tenants::sql_tenants};
use super::{sql_idempotency::sql_idempotency, sql_webhooks::sql_webhooks};
use crate::{DataError, Result};

/// Control store on PostgreSQL. Runs the migrations on connect (they take an advisory lock, so
/// several processes may connect at once).
#[derive(Clone)]
pub struct PgControlStore {
    pool: PgPool,
}

impl std::fmt::Debug for PgControlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgControlStore") // the URL may hold a password: never printed
    }
}

impl PgControlStore {
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new().max_connections(10).connect(url).await.map_err(|e| DataError::backend("postgres", e))?;
        Self::from_pool(pool).await
    }

    pub async fn from_pool(pool: PgPool) -> Result<Self> {
        sqlx::migrate!("./migrations/postgres").run(&pool).await.map_err(|e| DataError::backend("postgres", e))?;
        Ok(Self { pool })
    }
}

sql_tenants!(PgControlStore, PgRow, "postgres");
sql_billing!(PgControlStore, PgRow, "postgres");
sql_agents!(PgControlStore, PgRow, "postgres");
sql_access!(PgControlStore, PgRow, "postgres");
sql_content!(PgControlStore, PgRow, "postgres");
sql_campaigns!(PgControlStore, PgRow, "postgres");
sql_dialer!(PgControlStore, PgRow, "postgres", "FOR UPDATE SKIP LOCKED");
sql_webhooks!(PgControlStore, PgRow, "postgres");
sql_idempotency!(PgControlStore, PgRow, "postgres");
delegate_control_store!(PgControlStore);
