//! SQLite backend of the control store (the embedded twin: a file, or memory for tests).

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow};

use super::types::*;
use super::delegate::delegate_control_store;
use super::{sql_access::sql_access, sql_agents::sql_agents, sql_billing::sql_billing};
use super::{sql_campaigns::sql_campaigns, sql_content::sql_content, sql_dialer::sql_dialer, sql_tenants::sql_tenants};
use super::{sql_idempotency::sql_idempotency, sql_webhooks::sql_webhooks};
use crate::{DataError, Result};

/// Control store in a SQLite file (WAL, foreign keys on). Runs the migrations on open.
#[derive(Clone, Debug)]
pub struct SqliteControlStore {
    pool: SqlitePool,
}

impl SqliteControlStore {
    pub async fn open(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await.map_err(|e| DataError::backend("sqlite", e))?;
        Self::from_pool(pool).await
    }

    /// A private in-memory database (one connection, kept for the life of the store).
    pub async fn memory() -> Result<Self> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:").map_err(|e| DataError::backend("sqlite", e))?.foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await
            .map_err(|e| DataError::backend("sqlite", e))?;
        Self::from_pool(pool).await
    }

    async fn from_pool(pool: SqlitePool) -> Result<Self> {
        sqlx::migrate!("./migrations/sqlite").run(&pool).await.map_err(|e| DataError::backend("sqlite", e))?;
        Ok(Self { pool })
    }
}

sql_tenants!(SqliteControlStore, SqliteRow, "sqlite");
sql_billing!(SqliteControlStore, SqliteRow, "sqlite");
sql_agents!(SqliteControlStore, SqliteRow, "sqlite");
sql_access!(SqliteControlStore, SqliteRow, "sqlite");
sql_content!(SqliteControlStore, SqliteRow, "sqlite");
sql_campaigns!(SqliteControlStore, SqliteRow, "sqlite");
sql_dialer!(SqliteControlStore, SqliteRow, "sqlite", "");
sql_webhooks!(SqliteControlStore, SqliteRow, "sqlite");
sql_idempotency!(SqliteControlStore, SqliteRow, "sqlite");
delegate_control_store!(SqliteControlStore);
