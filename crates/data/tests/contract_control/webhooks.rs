//! Control store contract: tenant webhooks and their delivery log.

use super::*;

// ---------------------------------------------------------------- webhooks

pub(super) fn new_webhook(url: &str) -> NewWebhook {
    NewWebhook { url: url.into(), events: vec!["call.ended".into(), "*".into()], secret: "whsec_0123456789abcdef".into() }
}

pub(super) fn delivery(tenant: &str, webhook: &str, id: &str, at: i64) -> WebhookDelivery {
    WebhookDelivery {
        id: id.into(),
        tenant_id: tenant.into(),
        webhook_id: webhook.into(),
        event: "call.ended".into(),
        payload: format!(r#"{{"id":"{id}"}}"#),
        status: DeliveryStatus::Pending,
        attempts: 0,
        last_error: None,
        response_status: None,
        next_attempt_at: Some(at),
        created_at: at,
        updated_at: at,
    }
}

async fn webhooks_and_deliveries(s: &dyn ControlStore) {
    let t = tenant(s).await;
    let w1 = s.create_webhook(&t, new_webhook("https://hooks.example.com/cf?x=1")).await.unwrap();
    assert!(w1.id.starts_with("wh_") && w1.id.len() == 23 && w1.id[3..].bytes().all(|b| b.is_ascii_alphanumeric()), "{}", w1.id);
    assert_eq!((w1.tenant_id.as_str(), w1.url.as_str(), w1.events.clone()), (t.as_str(), "https://hooks.example.com/cf?x=1", vec!["call.ended".to_string(), "*".to_string()]));
    assert_eq!(w1.secret, "whsec_0123456789abcdef");
    let w2 = s.create_webhook(&t, NewWebhook { url: "http://127.0.0.1:9/x".into(), events: vec!["campaign.completed".into()], secret: "s".repeat(16) }).await.unwrap();
    assert_ne!(w1.id, w2.id);
    let mut both = vec![w1.clone(), w2.clone()];
    both.sort_by(|x, y| (x.created_at, &x.id).cmp(&(y.created_at, &y.id)));
    assert_eq!(s.webhooks(&t).await.unwrap(), both, "oldest first, then by id");

    let long_url = format!("https://example.com/{}", "a".repeat(2048));
    let bad = [
        ("ftp://example.com/x", vec!["e".to_string()], "s".repeat(16)),
        ("https://", vec!["e".to_string()], "s".repeat(16)),
        ("https://exa mple.com/", vec!["e".to_string()], "s".repeat(16)),
        (long_url.as_str(), vec!["e".to_string()], "s".repeat(16)),
        ("https://example.com/", vec![], "s".repeat(16)),
        ("https://example.com/", vec!["e".repeat(65)], "s".repeat(16)),
        ("https://example.com/", vec!["".to_string()], "s".repeat(16)),
        ("https://example.com/", vec!["e".to_string()], "s".repeat(15)),
    ];
    for (url, events, secret) in bad {
        let r = s.create_webhook(&t, NewWebhook { url: url.into(), events: events.clone(), secret }).await;
        assert!(matches!(r, Err(DataError::Invalid { .. })), "{} {events:?}: {r:?}", url.chars().take(40).collect::<String>());
    }
    let ok_len = format!("https://example.com/{}", "a".repeat(2048 - 20));
    assert_eq!(s.create_webhook(&t, new_webhook(&ok_len)).await.unwrap().url.len(), 2048);
    assert_eq!(s.webhooks(&t).await.unwrap().len(), 3, "refused webhooks wrote nothing");
    let r = s.create_webhook(&common::unique("none"), new_webhook("https://example.com/")).await;
    assert!(matches!(r, Err(DataError::NotFound { .. })), "{r:?}");

    // Deliveries: insert, then update by id (the payload of the insert is kept).
    let d1 = delivery(&t, &w1.id, "dlv_1", 1_000);
    s.save_delivery(&d1).await.unwrap();
    let mut d1b = d1.clone();
    (d1b.attempts, d1b.last_error, d1b.response_status, d1b.next_attempt_at, d1b.updated_at) = (1, Some("HTTP 500".into()), Some(500), Some(5_000), 1_500);
    s.save_delivery(&WebhookDelivery { payload: "changed".into(), ..d1b.clone() }).await.unwrap();
    s.save_delivery(&delivery(&t, &w2.id, "dlv_2", 2_000)).await.unwrap();
    let mut d3 = delivery(&t, &w1.id, "dlv_3", 3_000);
    s.save_delivery(&d3).await.unwrap();
    (d3.status, d3.attempts, d3.response_status, d3.next_attempt_at) = (DeliveryStatus::Delivered, 1, Some(204), None);
    s.save_delivery(&d3).await.unwrap();

    let all = s.deliveries(&t, None, 100).await.unwrap();
    assert_eq!(all.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), vec!["dlv_3", "dlv_2", "dlv_1"], "newest first");
    assert_eq!(all[0], d3);
    assert_eq!(all[2], d1b);
    assert_eq!(s.deliveries(&t, Some(&w1.id), 100).await.unwrap(), vec![d3.clone(), d1b.clone()]);
    assert_eq!(s.deliveries(&t, None, 1).await.unwrap(), vec![d3.clone()]);
    assert!(s.deliveries(&t, Some("wh_none"), 100).await.unwrap().is_empty());

    let r = s.save_delivery(&delivery(&t, "wh_none", "dlv_x", 1)).await;
    assert!(matches!(r, Err(DataError::NotFound { .. })), "{r:?}");
    let r = s.save_delivery(&WebhookDelivery { event: "has space".into(), ..delivery(&t, &w1.id, "dlv_y", 1) }).await;
    assert!(matches!(r, Err(DataError::Invalid { .. })), "{r:?}");
    let r = s.save_delivery(&delivery(&t, &w1.id, "bad id", 1)).await;
    assert!(matches!(r, Err(DataError::InvalidId(_))), "{r:?}");

    // Deleting a webhook fails its pending deliveries and keeps the log.
    s.delete_webhook(&t, &w1.id).await.unwrap();
    assert!(matches!(s.delete_webhook(&t, &w1.id).await, Err(DataError::NotFound { .. })));
    assert_eq!(s.webhooks(&t).await.unwrap().len(), 2);
    let log = s.deliveries(&t, Some(&w1.id), 100).await.unwrap();
    assert_eq!(log[0], d3, "a delivered one is unchanged");
    assert_eq!((log[1].status, log[1].next_attempt_at, log[1].last_error.as_deref()), (DeliveryStatus::Failed, None, Some("the webhook was deleted")));
    // The worker may still save an attempt it had in flight.
    s.save_delivery(&WebhookDelivery { status: DeliveryStatus::Failed, attempts: 2, next_attempt_at: None, ..d1b.clone() }).await.unwrap();
    assert_eq!(s.deliveries(&t, Some(&w1.id), 100).await.unwrap()[1].attempts, 2);
    // …but no new delivery for it.
    assert!(matches!(s.save_delivery(&delivery(&t, &w1.id, "dlv_4", 4_000)).await, Err(DataError::NotFound { .. })));
    s.save_delivery(&WebhookDelivery { status: DeliveryStatus::Delivered, next_attempt_at: None, ..delivery(&t, &w2.id, "dlv_2", 2_000) }).await.unwrap();
}

/// The delivery worker's queue spans tenants. Due times are tiny (a few ms after the epoch) so
/// that deliveries of other tests in a shared database are not due at `now_ms` = 5.
async fn due_deliveries_all_tenants(s: &dyn ControlStore) {
    let (a, b) = (tenant(s).await, tenant(s).await);
    let (wa, wb) = (s.create_webhook(&a, new_webhook("https://a.example/")).await.unwrap(), s.create_webhook(&b, new_webhook("https://b.example/")).await.unwrap());
    let at = |d: WebhookDelivery, next: Option<i64>, status| WebhookDelivery { next_attempt_at: next, status, ..d };
    let rows = [
        at(delivery(&a, &wa.id, "a1", 10), Some(2), DeliveryStatus::Pending),
        at(delivery(&b, &wb.id, "b1", 20), Some(1), DeliveryStatus::Pending),
        at(delivery(&a, &wa.id, "a2", 5), Some(3), DeliveryStatus::Pending),
        at(delivery(&a, &wa.id, "a3", 1), Some(1), DeliveryStatus::Delivered),
        at(delivery(&b, &wb.id, "b2", 1), Some(1), DeliveryStatus::Failed),
        at(delivery(&a, &wa.id, "a4", 1), None, DeliveryStatus::Pending),
        at(delivery(&b, &wb.id, "b3", 1), Some(5), DeliveryStatus::Pending),
    ];
    for d in &rows {
        s.save_delivery(d).await.unwrap();
    }
    let ours = |v: Vec<WebhookDelivery>| v.into_iter().filter(|d| d.tenant_id == a || d.tenant_id == b).map(|d| d.id).collect::<Vec<_>>();
    assert_eq!(ours(s.due_deliveries(3, 10_000).await.unwrap()), vec!["b1", "a1", "a2"], "longest overdue first, across tenants");
    assert_eq!(ours(s.due_deliveries(5, 10_000).await.unwrap()), vec!["b1", "a1", "a2", "b3"]);
    assert!(ours(s.due_deliveries(0, 10_000).await.unwrap()).is_empty());
    assert_eq!(s.due_deliveries(3, 2).await.unwrap().len(), 2);
    assert_eq!(s.due_deliveries(3, 0).await.unwrap().len(), 0);
    let full = s.due_deliveries(5, 10_000).await.unwrap().into_iter().find(|d| d.id == "b3" && d.tenant_id == b).unwrap();
    assert_eq!(full, rows[6]);
    // Done with them: not due for anyone else sharing the database.
    for d in rows.iter().filter(|d| d.status == DeliveryStatus::Pending) {
        s.save_delivery(&WebhookDelivery { status: DeliveryStatus::Delivered, next_attempt_at: None, ..d.clone() }).await.unwrap();
    }
    assert!(ours(s.due_deliveries(i64::MAX, 10_000).await.unwrap()).is_empty());
}


on_both!(webhooks_and_deliveries, due_deliveries_all_tenants);
