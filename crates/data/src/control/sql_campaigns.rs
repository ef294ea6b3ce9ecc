//! Outbound campaigns and their contacts, written once for both backends (`$N` placeholders).
//! `$skip_locked` is `FOR UPDATE SKIP LOCKED` on PostgreSQL (two dialers never take the same
//! contact) and empty on SQLite (whose writers are serialized anyway).

macro_rules! sql_campaigns {
    ($store:ty, $row:ty, $name:literal, $skip_locked:literal) => {
        impl $store {
            fn campaign_row(r: &$row) -> $crate::Result<$crate::control::Campaign> {
                use sqlx::Row;
                let e = |e| $crate::DataError::backend($name, e);
                let (window, status): (String, String) = (r.try_get("dial_window").map_err(e)?, r.try_get("status").map_err(e)?);
                Ok($crate::control::Campaign {
                    tenant_id: r.try_get("tenant_id").map_err(e)?,
                    id: r.try_get("id").map_err(e)?,
                    agent_id: r.try_get("agent_id").map_err(e)?,
                    name: r.try_get("name").map_err(e)?,
                    window: $crate::control::validate::from_json($name, &window)?,
                    status: $crate::control::CampaignStatus::parse(&status)?,
                    created_at: r.try_get("created_at").map_err(e)?,
                })
            }

            /// Status `draft`; the agent must be this tenant's.
            async fn create_campaign(
                &self,
                tenant_id: &str,
                id: &str,
                agent_id: &str,
                name: &str,
                window: serde_json::Value,
            ) -> $crate::Result<$crate::control::Campaign> {
                use $crate::control::validate as v;
                v::id(tenant_id)?;
                v::id(id)?;
                v::id(agent_id)?;
                v::text("campaign name", name)?;
                self.exists("SELECT id FROM agents WHERE tenant_id = $1 AND id = $2", tenant_id, agent_id, "agent").await?;
                let row = sqlx::query(
                    "INSERT INTO campaigns (tenant_id, id, agent_id, name, dial_window, status, created_at) \
                     VALUES ($1, $2, $3, $4, $5, 'draft', $6) RETURNING *",
                )
                .bind(tenant_id)
                .bind(id)
                .bind(agent_id)
                .bind(name)
                .bind(v::json_text(&window)?)
                .bind(v::now_ms())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| v::write_err($name, e, || format!("campaign `{id}` already exists"), ("tenant", tenant_id)))?;
                Self::campaign_row(&row)
            }

            /// Adds contacts (status `pending`) in one transaction; all numbers are checked first.
            async fn add_campaign_contacts(
                &self,
                tenant_id: &str,
                campaign_id: &str,
                contacts: Vec<(String, serde_json::Value)>,
            ) -> $crate::Result<usize> {
                use $crate::control::validate as v;
                v::id(tenant_id)?;
                v::id(campaign_id)?;
                let mut rows = Vec::with_capacity(contacts.len());
                for (number, vars) in &contacts {
                    v::e164(number)?;
                    rows.push((number, v::json_text(vars)?));
                }
                self.exists("SELECT id FROM campaigns WHERE tenant_id = $1 AND id = $2", tenant_id, campaign_id, "campaign").await?;
                let be = |e| $crate::DataError::backend($name, e);
                let now = v::now_ms();
                let mut tx = self.pool.begin().await.map_err(be)?;
                for (number, vars) in &rows {
                    sqlx::query(
                        "INSERT INTO campaign_contacts (tenant_id, campaign_id, number, vars, status, attempts, updated_at) \
                         VALUES ($1, $2, $3, $4, 'pending', 0, $5)",
                    )
                    .bind(tenant_id)
                    .bind(campaign_id)
                    .bind(*number)
                    .bind(vars)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| v::write_err($name, e, || "contact exists".into(), ("campaign", campaign_id)))?;
                }
                tx.commit().await.map_err(be)?;
                Ok(rows.len())
            }

            async fn set_campaign_status(&self, tenant_id: &str, campaign_id: &str, status: $crate::control::CampaignStatus) -> $crate::Result<()> {
                $crate::control::validate::id(tenant_id)?;
                let done = sqlx::query("UPDATE campaigns SET status = $3 WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant_id)
                    .bind(campaign_id)
                    .bind(status.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                if done.rows_affected() == 0 {
                    return Err($crate::DataError::not_found("campaign", campaign_id));
                }
                Ok(())
            }

            /// Takes up to `n` pending contacts (oldest first) and marks them `dialing`
            /// (attempts + 1). Does not look at the campaign's status: the dialer decides.
            async fn next_contacts(&self, tenant_id: &str, campaign_id: &str, n: u32) -> $crate::Result<Vec<$crate::control::CampaignContact>> {
                use sqlx::Row;
                use $crate::control::validate as v;
                v::id(tenant_id)?;
                v::id(campaign_id)?;
                self.exists("SELECT id FROM campaigns WHERE tenant_id = $1 AND id = $2", tenant_id, campaign_id, "campaign").await?;
                let rows = sqlx::query(concat!(
                    "UPDATE campaign_contacts SET status = 'dialing', attempts = attempts + 1, updated_at = $4 WHERE id IN (",
                    "SELECT id FROM campaign_contacts WHERE tenant_id = $1 AND campaign_id = $2 AND status = 'pending' ",
                    "ORDER BY id LIMIT $3 ",
                    $skip_locked,
                    ") RETURNING *"
                ))
                .bind(tenant_id)
                .bind(campaign_id)
                .bind(i64::from(n.min(10_000)))
                .bind(v::now_ms())
                .fetch_all(&self.pool)
                .await
                .map_err(|e| $crate::DataError::backend($name, e))?;
                let e = |e| $crate::DataError::backend($name, e);
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let (vars, status): (String, String) = (r.try_get("vars").map_err(e)?, r.try_get("status").map_err(e)?);
                    out.push($crate::control::CampaignContact {
                        id: r.try_get("id").map_err(e)?,
                        campaign_id: r.try_get("campaign_id").map_err(e)?,
                        number: r.try_get("number").map_err(e)?,
                        vars: v::from_json($name, &vars)?,
                        status: $crate::control::ContactStatus::parse(&status)?,
                        attempts: r.try_get("attempts").map_err(e)?,
                    });
                }
                out.sort_by_key(|c| c.id);
                Ok(out)
            }

            async fn campaigns(&self, tenant_id: &str) -> $crate::Result<Vec<$crate::control::Campaign>> {
                $crate::control::validate::id(tenant_id)?;
                let rows = sqlx::query("SELECT * FROM campaigns WHERE tenant_id = $1 ORDER BY id")
                    .bind(tenant_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                rows.iter().map(Self::campaign_row).collect()
            }
        }
    };
}
pub(crate) use sql_campaigns;
