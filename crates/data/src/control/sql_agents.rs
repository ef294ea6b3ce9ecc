//! Agents (versioned) and API keys, written once for both backends (`$N` placeholders).

macro_rules! sql_agents {
    ($store:ty, $row:ty, $name:literal) => {
        impl $store {
            fn agent_row(r: &$row) -> $crate::Result<$crate::control::Agent> {
                use sqlx::Row;
                let e = |e| $crate::DataError::backend($name, e);
                Ok($crate::control::Agent {
                    tenant_id: r.try_get("tenant_id").map_err(e)?,
                    id: r.try_get("id").map_err(e)?,
                    name: r.try_get("name").map_err(e)?,
                    latest_version: r.try_get("latest_version").map_err(e)?,
                    created_at: r.try_get("created_at").map_err(e)?,
                })
            }

            fn version_row(r: &$row) -> $crate::Result<$crate::control::AgentVersion> {
                use sqlx::Row;
                use $crate::control::validate::from_json;
                let e = |e| $crate::DataError::backend($name, e);
                let (kind, providers, tools, analysis): (String, String, String, String) =
                    (r.try_get("kind").map_err(e)?, r.try_get("providers").map_err(e)?, r.try_get("tools").map_err(e)?, r.try_get("analysis").map_err(e)?);
                Ok($crate::control::AgentVersion {
                    tenant_id: r.try_get("tenant_id").map_err(e)?,
                    agent_id: r.try_get("agent_id").map_err(e)?,
                    version: r.try_get("version").map_err(e)?,
                    spec: $crate::control::AgentVersionSpec {
                        kind: $crate::control::AgentKind::parse(&kind)?,
                        body: r.try_get("body").map_err(e)?,
                        voice: r.try_get("voice").map_err(e)?,
                        language: r.try_get("language").map_err(e)?,
                        providers: from_json($name, &providers)?,
                        tools: from_json($name, &tools)?,
                        analysis: from_json($name, &analysis)?,
                    },
                    created_at: r.try_get("created_at").map_err(e)?,
                })
            }

            async fn create_agent(&self, tenant_id: &str, id: &str, name: &str) -> $crate::Result<$crate::control::Agent> {
                use $crate::control::validate as v;
                v::id(tenant_id)?;
                v::id(id)?;
                v::text("agent name", name)?;
                let row = sqlx::query(
                    "INSERT INTO agents (tenant_id, id, name, latest_version, created_at) VALUES ($1, $2, $3, 0, $4) RETURNING *",
                )
                .bind(tenant_id)
                .bind(id)
                .bind(name)
                .bind(v::now_ms())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| v::write_err($name, e, || format!("agent `{id}` already exists"), ("tenant", tenant_id)))?;
                Self::agent_row(&row)
            }

            async fn agents(&self, tenant_id: &str) -> $crate::Result<Vec<$crate::control::Agent>> {
                $crate::control::validate::id(tenant_id)?;
                let rows = sqlx::query("SELECT * FROM agents WHERE tenant_id = $1 ORDER BY id")
                    .bind(tenant_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                rows.iter().map(Self::agent_row).collect()
            }

            async fn agent(&self, tenant_id: &str, id: &str) -> $crate::Result<$crate::control::Agent> {
                $crate::control::validate::id(tenant_id)?;
                $crate::control::validate::id(id)?;
                let row = sqlx::query("SELECT * FROM agents WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant_id)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?
                    .ok_or_else(|| $crate::DataError::not_found("agent", id))?;
                Self::agent_row(&row)
            }

            async fn update_agent(&self, tenant_id: &str, id: &str, name: &str) -> $crate::Result<$crate::control::Agent> {
                use $crate::control::validate as v;
                v::id(tenant_id)?;
                v::id(id)?;
                v::text("agent name", name)?;
                let row = sqlx::query("UPDATE agents SET name = $3 WHERE tenant_id = $1 AND id = $2 RETURNING *")
                    .bind(tenant_id)
                    .bind(id)
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?
                    .ok_or_else(|| $crate::DataError::not_found("agent", id))?;
                Self::agent_row(&row)
            }

            /// Deletes the agent and its versions in one transaction; `Conflict` (nothing
            /// deleted) while one of the tenant's numbers routes to it.
            async fn delete_agent(&self, tenant_id: &str, id: &str) -> $crate::Result<()> {
                $crate::control::validate::id(tenant_id)?;
                $crate::control::validate::id(id)?;
                let be = |e| $crate::DataError::backend($name, e);
                let mut tx = self.pool.begin().await.map_err(be)?;
                let versions = sqlx::query("DELETE FROM agent_versions WHERE tenant_id = $1 AND agent_id = $2").bind(tenant_id).bind(id);
                versions.execute(&mut *tx).await.map_err(be)?;
                let gone = sqlx::query("DELETE FROM agents WHERE tenant_id = $1 AND id = $2").bind(tenant_id).bind(id);
                if gone.execute(&mut *tx).await.map_err(be)?.rows_affected() == 0 {
                    tx.rollback().await.map_err(be)?;
                    return Err($crate::DataError::not_found("agent", id));
                }
                let bound = sqlx::query("SELECT number FROM phone_numbers WHERE tenant_id = $1 AND agent_id = $2 LIMIT 1")
                    .bind(tenant_id)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(be)?;
                if bound.is_some() {
                    tx.rollback().await.map_err(be)?;
                    return Err($crate::DataError::Conflict(format!("agent `{id}` still answers a phone number: release or re-point it first")));
                }
                tx.commit().await.map_err(be)
            }

            /// The version number comes from bumping `agents.latest_version` inside the
            /// transaction: that UPDATE row-locks on PostgreSQL and takes SQLite's write lock, so
            /// concurrent publishes queue up and get 1, 2, 3… with no gap (a refused publish rolls
            /// back its bump).
            async fn publish_agent_version(
                &self,
                tenant_id: &str,
                agent_id: &str,
                spec: $crate::control::AgentVersionSpec,
                expected_latest: Option<i32>,
            ) -> $crate::Result<i32> {
                use sqlx::Row;
                use $crate::control::validate as v;
                v::id(tenant_id)?;
                v::id(agent_id)?;
                if spec.body.trim().is_empty() {
                    return Err($crate::DataError::invalid("agent body", "must not be empty"));
                }
                v::text("voice", &spec.voice)?;
                v::text("language", &spec.language)?;
                let (providers, tools, analysis) = (v::json_text(&spec.providers)?, v::json_text(&spec.tools)?, v::json_text(&spec.analysis)?);
                let be = |e| $crate::DataError::backend($name, e);
                let mut tx = self.pool.begin().await.map_err(be)?;
                let row = sqlx::query("UPDATE agents SET latest_version = latest_version + 1 WHERE tenant_id = $1 AND id = $2 RETURNING latest_version")
                    .bind(tenant_id)
                    .bind(agent_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(be)?
                    .ok_or_else(|| $crate::DataError::not_found("agent", agent_id))?;
                let version: i32 = row.try_get("latest_version").map_err(be)?;
                if let Some(expected) = expected_latest {
                    if expected != version - 1 {
                        tx.rollback().await.map_err(be)?;
                        return Err($crate::DataError::Conflict(format!(
                            "agent `{agent_id}` is at version {}, not {expected}",
                            version - 1
                        )));
                    }
                }
                sqlx::query(
                    "INSERT INTO agent_versions (tenant_id, agent_id, version, kind, body, voice, language, providers, tools, analysis, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(tenant_id)
                .bind(agent_id)
                .bind(version)
                .bind(spec.kind.as_str())
                .bind(&spec.body)
                .bind(&spec.voice)
                .bind(&spec.language)
                .bind(providers)
                .bind(tools)
                .bind(analysis)
                .bind(v::now_ms())
                .execute(&mut *tx)
                .await
                .map_err(|e| v::write_err($name, e, || format!("agent `{agent_id}` version {version} exists"), ("agent", agent_id)))?;
                tx.commit().await.map_err(be)?;
                Ok(version)
            }

            /// `None` = the latest version.
            async fn agent_version(&self, tenant_id: &str, agent_id: &str, version: Option<i32>) -> $crate::Result<$crate::control::AgentVersion> {
                $crate::control::validate::id(tenant_id)?;
                $crate::control::validate::id(agent_id)?;
                let sql = match version {
                    Some(_) => "SELECT * FROM agent_versions WHERE tenant_id = $1 AND agent_id = $2 AND version = $3",
                    None => "SELECT * FROM agent_versions WHERE tenant_id = $1 AND agent_id = $2 ORDER BY version DESC LIMIT 1",
                };
                let mut q = sqlx::query(sql).bind(tenant_id).bind(agent_id);
                if let Some(n) = version {
                    q = q.bind(n);
                }
                let row = q
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?
                    .ok_or_else(|| $crate::DataError::not_found("agent version", format!("{agent_id}@{}", version.map_or("latest".into(), |n| n.to_string()))))?;
                Self::version_row(&row)
            }

            async fn agent_versions(&self, tenant_id: &str, agent_id: &str) -> $crate::Result<Vec<$crate::control::AgentVersion>> {
                $crate::control::validate::id(tenant_id)?;
                $crate::control::validate::id(agent_id)?;
                let found = sqlx::query("SELECT id FROM agents WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant_id)
                    .bind(agent_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                if found.is_none() {
                    return Err($crate::DataError::not_found("agent", agent_id));
                }
                let rows = sqlx::query("SELECT * FROM agent_versions WHERE tenant_id = $1 AND agent_id = $2 ORDER BY version")
                    .bind(tenant_id)
                    .bind(agent_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                rows.iter().map(Self::version_row).collect()
            }
        }
    };
}
pub(crate) use sql_agents;
