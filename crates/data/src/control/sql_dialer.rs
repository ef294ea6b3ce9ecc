//! The dialer's side of campaign contacts, written once for both backends (`$N` placeholders).
//! `$skip_locked` is `FOR UPDATE SKIP LOCKED` on PostgreSQL (two dialers never take the same
//! contact) and empty on SQLite (whose writers are serialized anyway).
//!
//! A contact is `pending` → (taken) `dialing` → finished: `done`, `failed`, or `pending` again
//! with a retry time. `attempts` counts finished attempts; a released contact is not counted.

macro_rules! sql_dialer {
    ($store:ty, $row:ty, $name:literal, $skip_locked:literal) => {
        impl $store {
            fn contact_row(r: &$row) -> $crate::Result<$crate::control::CampaignContact> {
                use sqlx::Row;
                let e = |e| $crate::DataError::backend($name, e);
                let (vars, status): (String, String) = (r.try_get("vars").map_err(e)?, r.try_get("status").map_err(e)?);
                Ok($crate::control::CampaignContact {
                    id: r.try_get("id").map_err(e)?,
                    campaign_id: r.try_get("campaign_id").map_err(e)?,
                    number: r.try_get("number").map_err(e)?,
                    vars: $crate::control::validate::from_json($name, &vars)?,
                    status: $crate::control::ContactStatus::parse(&status)?,
                    attempts: r.try_get("attempts").map_err(e)?,
                    last_outcome: r.try_get("last_outcome").map_err(e)?,
                    last_call_id: r.try_get("last_call_id").map_err(e)?,
                    next_attempt_at: r.try_get("next_attempt_at").map_err(e)?,
                })
            }

            /// Takes up to `n` pending contacts that are due (`next_attempt_at <= now`), oldest
            /// first, and marks them `dialing`. Does not look at the campaign's status: the
            /// dialer decides.
            async fn next_contacts(&self, tenant_id: &str, campaign_id: &str, n: u32) -> $crate::Result<Vec<$crate::control::CampaignContact>> {
                use $crate::control::validate as v;
                v::id(tenant_id)?;
                v::id(campaign_id)?;
                self.exists("SELECT id FROM campaigns WHERE tenant_id = $1 AND id = $2", tenant_id, campaign_id, "campaign").await?;
                let rows = sqlx::query(concat!(
                    "UPDATE campaign_contacts SET status = 'dialing', updated_at = $4 WHERE id IN (",
                    "SELECT id FROM campaign_contacts WHERE tenant_id = $1 AND campaign_id = $2 AND status = 'pending' ",
                    "AND next_attempt_at <= $4 ORDER BY id LIMIT $3 ",
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
                let mut out = rows.iter().map(Self::contact_row).collect::<$crate::Result<Vec<_>>>()?;
                out.sort_by_key(|c| c.id);
                Ok(out)
            }

            /// Why a change to a `dialing` contact touched no row: `NotFound` or `Conflict`.
            async fn not_dialing(&self, tenant_id: &str, campaign_id: &str, contact_id: i64) -> $crate::DataError {
                use sqlx::Row;
                let row = sqlx::query("SELECT status FROM campaign_contacts WHERE tenant_id = $1 AND campaign_id = $2 AND id = $3")
                    .bind(tenant_id)
                    .bind(campaign_id)
                    .bind(contact_id)
                    .fetch_optional(&self.pool)
                    .await;
                match row {
                    Err(e) => $crate::DataError::backend($name, e),
                    Ok(None) => $crate::DataError::not_found("campaign contact", contact_id.to_string()),
                    Ok(Some(r)) => {
                        let status: String = r.try_get("status").unwrap_or_default();
                        $crate::DataError::Conflict(format!("contact {contact_id} is {status}, not dialing"))
                    }
                }
            }

            /// Records a finished attempt of a `dialing` contact (attempts + 1): pending again
            /// at `retry_at_ms`, else `done` when the outcome is `completed` and `failed`
            /// otherwise. `Conflict` if the contact is not dialing.
            async fn finish_contact(
                &self,
                tenant_id: &str,
                campaign_id: &str,
                contact_id: i64,
                outcome: &str,
                call_id: Option<&str>,
                retry_at_ms: Option<i64>,
            ) -> $crate::Result<()> {
                use $crate::control::{ContactStatus, validate as v};
                v::id(tenant_id)?;
                v::id(campaign_id)?;
                v::token("call outcome", outcome)?;
                if let Some(c) = call_id {
                    v::id(c)?;
                }
                if let Some(at) = retry_at_ms {
                    v::non_negative("retry time", at)?;
                }
                let status = match retry_at_ms {
                    Some(_) => ContactStatus::Pending,
                    None if outcome == "completed" => ContactStatus::Done,
                    None => ContactStatus::Failed,
                };
                let done = sqlx::query(
                    "UPDATE campaign_contacts SET status = $4, attempts = attempts + 1, next_attempt_at = COALESCE($5, next_attempt_at), \
                     last_outcome = $6, last_call_id = $7, updated_at = $8 \
                     WHERE tenant_id = $1 AND campaign_id = $2 AND id = $3 AND status = 'dialing'",
                )
                .bind(tenant_id)
                .bind(campaign_id)
                .bind(contact_id)
                .bind(status.as_str())
                .bind(retry_at_ms)
                .bind(outcome)
                .bind(call_id)
                .bind(v::now_ms())
                .execute(&self.pool)
                .await
                .map_err(|e| $crate::DataError::backend($name, e))?;
                if done.rows_affected() == 0 {
                    return Err(self.not_dialing(tenant_id, campaign_id, contact_id).await);
                }
                Ok(())
            }

            /// Puts a `dialing` contact back to `pending` without counting an attempt.
            async fn release_contact(&self, tenant_id: &str, campaign_id: &str, contact_id: i64) -> $crate::Result<()> {
                use $crate::control::validate as v;
                v::id(tenant_id)?;
                v::id(campaign_id)?;
                let done = sqlx::query(
                    "UPDATE campaign_contacts SET status = 'pending', updated_at = $4 \
                     WHERE tenant_id = $1 AND campaign_id = $2 AND id = $3 AND status = 'dialing'",
                )
                .bind(tenant_id)
                .bind(campaign_id)
                .bind(contact_id)
                .bind(v::now_ms())
                .execute(&self.pool)
                .await
                .map_err(|e| $crate::DataError::backend($name, e))?;
                if done.rows_affected() == 0 {
                    return Err(self.not_dialing(tenant_id, campaign_id, contact_id).await);
                }
                Ok(())
            }

            /// Keeps this node's claims alive: `dialing` contacts among `ids` get `updated_at`
            /// = now. Returns how many were touched.
            async fn touch_contacts(&self, tenant_id: &str, campaign_id: &str, ids: &[i64]) -> $crate::Result<u64> {
                use $crate::control::validate as v;
                v::id(tenant_id)?;
                v::id(campaign_id)?;
                let mut n = 0;
                for chunk in ids.chunks(500) {
                    let list = chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
                    let done = sqlx::query(&format!(
                        "UPDATE campaign_contacts SET updated_at = $3 WHERE tenant_id = $1 AND campaign_id = $2 AND status = 'dialing' AND id IN ({list})"
                    ))
                    .bind(tenant_id)
                    .bind(campaign_id)
                    .bind(v::now_ms())
                    .execute(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                    n += done.rows_affected();
                }
                Ok(n)
            }

            /// Takes over `dialing` contacts whose claim has not been touched since
            /// `older_than_ms` (their node stopped): they are returned still `dialing`, touched
            /// (claimed by the caller, which settles them).
            async fn stale_contacts(&self, tenant_id: &str, campaign_id: &str, older_than_ms: i64) -> $crate::Result<Vec<$crate::control::CampaignContact>> {
                use $crate::control::validate as v;
                v::id(tenant_id)?;
                v::id(campaign_id)?;
                let rows = sqlx::query(concat!(
                    "UPDATE campaign_contacts SET updated_at = $4 WHERE id IN (",
                    "SELECT id FROM campaign_contacts WHERE tenant_id = $1 AND campaign_id = $2 AND status = 'dialing' ",
                    "AND updated_at < $3 ORDER BY id LIMIT 1000 ",
                    $skip_locked,
                    ") RETURNING *"
                ))
                .bind(tenant_id)
                .bind(campaign_id)
                .bind(older_than_ms)
                .bind(v::now_ms())
                .fetch_all(&self.pool)
                .await
                .map_err(|e| $crate::DataError::backend($name, e))?;
                let mut out = rows.iter().map(Self::contact_row).collect::<$crate::Result<Vec<_>>>()?;
                out.sort_by_key(|c| c.id);
                Ok(out)
            }

            async fn campaign_progress(&self, tenant_id: &str, id: &str) -> $crate::Result<$crate::control::CampaignProgress> {
                use sqlx::Row;
                use $crate::control::ContactStatus;
                $crate::control::validate::id(tenant_id)?;
                $crate::control::validate::id(id)?;
                self.exists("SELECT id FROM campaigns WHERE tenant_id = $1 AND id = $2", tenant_id, id, "campaign").await?;
                let rows = sqlx::query(
                    "SELECT status, COUNT(*) AS n, COALESCE(SUM(attempts), 0) AS a FROM campaign_contacts \
                     WHERE tenant_id = $1 AND campaign_id = $2 GROUP BY status",
                )
                .bind(tenant_id)
                .bind(id)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| $crate::DataError::backend($name, e))?;
                let e = |e| $crate::DataError::backend($name, e);
                let mut p = $crate::control::CampaignProgress::default();
                for r in &rows {
                    let (status, n, attempts): (String, i64, i64) = (r.try_get("status").map_err(e)?, r.try_get("n").map_err(e)?, r.try_get("a").map_err(e)?);
                    *match ContactStatus::parse(&status)? {
                        ContactStatus::Pending => &mut p.pending,
                        ContactStatus::Dialing => &mut p.dialing,
                        ContactStatus::Done => &mut p.done,
                        ContactStatus::Failed => &mut p.failed,
                    } += n;
                    p.total += n;
                    p.attempts += attempts;
                }
                Ok(p)
            }

            /// One page of a campaign's contacts in id order: those with `id > after_id`.
            async fn campaign_contacts(&self, tenant_id: &str, id: &str, after_id: i64, limit: u32) -> $crate::Result<Vec<$crate::control::CampaignContact>> {
                $crate::control::validate::id(tenant_id)?;
                $crate::control::validate::id(id)?;
                self.exists("SELECT id FROM campaigns WHERE tenant_id = $1 AND id = $2", tenant_id, id, "campaign").await?;
                let rows = sqlx::query("SELECT * FROM campaign_contacts WHERE tenant_id = $1 AND campaign_id = $2 AND id > $3 ORDER BY id LIMIT $4")
                    .bind(tenant_id)
                    .bind(id)
                    .bind(after_id)
                    .bind(i64::from(limit.min(10_000)))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                rows.iter().map(Self::contact_row).collect()
            }
        }
    };
}
pub(crate) use sql_dialer;
