//! PostgreSQL backend of the control store.

use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};

use super::types::*;
use super::{delegate_control_store, sql_billing::sql_billing, sql_tenants::sql_tenants};
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
delegate_control_store!(PgControlStore);
