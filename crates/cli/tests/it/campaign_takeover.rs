//! A contact claimed by a node that then stopped (it never renews its claim) is taken over by a
//! live node's dialer: the lost attempt counts as `node_lost`, and the contact is dialled again
//! and completed.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::telephony::rig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_claimed_by_a_stopped_node_is_taken_over() {
    let rig = rig("takeover", |c| {
        c.campaigns.tick_ms = 100;
        c.campaigns.claim_stale_ms = 1500;
    })
    .await;
    let tenant = rig.server.state.config.agents.default_tenant.clone();
    rig.server.state.stores.control.create_agent(&tenant, "clinic", "Clinic").await.unwrap();
    let body = json!({
        "id": "lost", "name": "Lost node", "agent_id": "clinic",
        "settings": {"window": {"start": "00:00", "end": "00:00", "timezone": "UTC"}, "max_attempts": 2, "retry_backoff_s": 1},
        "contacts": [{"number": "+15550009", "variables": {"name": "Ana"}}],
    });
    let r = rig.http.post(format!("{}/v1/campaigns", rig.base)).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    // another node claims the contact and dies before dialling it
    let claimed = rig.server.state.stores.control.next_contacts(&tenant, "lost", 1).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let claimed_at = Instant::now();
    let r = rig.http.post(format!("{}/v1/campaigns/lost/start", rig.base)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    let mut c = Value::Null;
    let mut taken_over_after = None;
    for _ in 0..900 {
        c = rig.http.get(format!("{}/v1/campaigns/lost", rig.base)).send().await.unwrap().json().await.unwrap();
        if taken_over_after.is_none() && c["progress"]["attempts"].as_i64() >= Some(1) {
            taken_over_after = Some(claimed_at.elapsed());
        }
        if c["status"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(c["status"], "completed", "{c}");
    let after = taken_over_after.expect("the lost attempt was counted");
    assert!(after >= Duration::from_millis(1400), "not before the claim went stale: {after:?}");
    let rows: Value = rig.http.get(format!("{}/v1/campaigns/lost/contacts", rig.base)).send().await.unwrap().json().await.unwrap();
    let row = &rows["data"][0];
    assert_eq!((row["status"].as_str(), row["attempts"].as_i64(), row["last_outcome"].as_str()), (Some("done"), Some(2), Some("completed")), "{rows}");
    rig.done();
}
