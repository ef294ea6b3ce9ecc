//! Control store contract: tenant isolation across every resource, agent edits, plan provider lists.

use super::*;
use super::idempotency::sha;
use super::webhooks::{delivery, new_webhook};

// ---------------------------------------------------------------- isolation

/// Tenant B, knowing every id of tenant A, reads nothing of A's and changes nothing.
async fn other_tenant_sees_nothing(s: &dyn ControlStore) {
    let (a, b) = (tenant(s).await, tenant(s).await);
    s.create_agent(&a, "agent", "A's agent").await.unwrap();
    s.publish_agent_version(&a, "agent", spec("secret prompt"), None).await.unwrap();
    s.assign_number(&a, &fresh_number(), "agent").await.unwrap();
    s.create_kb(&a, "kb", "KB", "m", 4).await.unwrap();
    s.add_document(&a, "kb", doc("d")).await.unwrap();
    s.create_campaign(&a, "camp", "agent", "C", json!({})).await.unwrap();
    s.add_campaign_contacts(&a, "camp", vec![("+14155550123".into(), json!({}))]).await.unwrap();
    s.record_usage(usage(&a, "u", Metric::CallMs, "twilio", 60_000, FEB_2024)).await.unwrap();
    s.set_user_roles(&a, "sub", "a@a.example", vec!["admin".into()]).await.unwrap();
    let (key, _) = s.create_api_key(&a, "k", vec![]).await.unwrap();

    let nf = |r: Result<(), DataError>, what: &str| assert!(matches!(r, Err(DataError::NotFound { .. })), "{what}: {r:?}");
    nf(s.agent_version(&b, "agent", None).await.map(|_| ()), "agent version");
    nf(s.agent_versions(&b, "agent").await.map(|_| ()), "agent versions");
    nf(s.publish_agent_version(&b, "agent", spec("x"), None).await.map(|_| ()), "publish");
    nf(s.documents(&b, "kb").await.map(|_| ()), "documents");
    nf(s.add_document(&b, "kb", doc("x")).await.map(|_| ()), "add document");
    nf(s.set_document_status(&b, "kb", "d", DocumentStatus::Failed, 0).await, "document status");
    nf(s.delete_document(&b, "kb", "d").await, "delete document");
    nf(s.add_campaign_contacts(&b, "camp", vec![("+14155550124".into(), json!({}))]).await.map(|_| ()), "contacts");
    nf(s.next_contacts(&b, "camp", 5).await.map(|_| ()), "next contacts");
    nf(s.set_campaign_status(&b, "camp", CampaignStatus::Cancelled).await, "campaign status");
    nf(s.create_campaign(&b, "camp2", "agent", "C", json!({})).await.map(|_| ()), "campaign with A's agent");
    nf(s.revoke_api_key(&b, &key.id).await, "revoke key");
    nf(s.user_roles(&b, "sub").await.map(|_| ()), "user roles");
    assert!(s.agents(&b).await.unwrap().is_empty());
    assert!(s.numbers(&b).await.unwrap().is_empty());
    assert!(s.kbs(&b).await.unwrap().is_empty());
    assert!(s.campaigns(&b).await.unwrap().is_empty());
    assert!(s.api_keys(&b).await.unwrap().is_empty());
    assert!(s.users(&b).await.unwrap().is_empty());
    assert!(s.usage_summary(&b, 0, i64::MAX).await.unwrap().is_empty());
    assert!(s.invoice(&b, "2024-02").await.unwrap().lines.is_empty());

    nf(s.agent(&b, "agent").await.map(|_| ()), "agent");
    nf(s.update_agent(&b, "agent", "B's now").await.map(|_| ()), "rename agent");
    nf(s.delete_agent(&b, "agent").await, "delete agent");
    nf(s.campaign(&b, "camp").await.map(|_| ()), "campaign");
    nf(s.campaign_progress(&b, "camp").await.map(|_| ()), "campaign progress");
    nf(s.campaign_contacts(&b, "camp", 0, 10).await.map(|_| ()), "campaign contacts");
    let contact = s.campaign_contacts(&a, "camp", 0, 10).await.unwrap()[0].id;
    nf(s.finish_contact(&b, "camp", contact, "completed", None, None).await, "finish contact");
    nf(s.release_contact(&b, "camp", contact).await, "release contact");
    assert!(s.running_campaigns().await.unwrap().iter().all(|c| c.tenant_id != b));

    let hook = s.create_webhook(&a, new_webhook("https://a.example/hook")).await.unwrap();
    let dlv = delivery(&a, &hook.id, "dlv_a", 1_000);
    s.save_delivery(&dlv).await.unwrap();
    nf(s.delete_webhook(&b, &hook.id).await, "delete webhook");
    nf(s.save_delivery(&delivery(&b, &hook.id, "dlv_b", 1_000)).await, "delivery to A's webhook");
    assert!(s.webhooks(&b).await.unwrap().is_empty());
    assert!(s.deliveries(&b, None, 100).await.unwrap().is_empty());
    assert!(s.deliveries(&b, Some(&hook.id), 100).await.unwrap().is_empty());

    assert_eq!(s.idempotency_begin(&a, "req-1", &sha('a')).await.unwrap(), IdempotencyState::New);
    nf(s.idempotency_finish(&b, "req-1", 200, "{}").await, "finish A's idempotency key");
    nf(s.idempotency_abort(&b, "req-1").await, "abort A's idempotency key");
    assert_eq!(s.idempotency_begin(&b, "req-1", &sha('b')).await.unwrap(), IdempotencyState::New, "keys are per tenant");
    s.idempotency_finish(&b, "req-1", 201, "B's body").await.unwrap();
    assert_eq!(s.idempotency_begin(&a, "req-1", &sha('a')).await.unwrap(), IdempotencyState::InProgress);

    // B owning the same ids (agent, campaign, delivery) still reaches nothing of A's.
    s.create_agent(&b, "agent", "B's agent").await.unwrap();
    s.create_campaign(&b, "camp", "agent", "B's C", json!({})).await.unwrap();
    s.add_campaign_contacts(&b, "camp", vec![("+14155550125".into(), json!({}))]).await.unwrap();
    nf(s.finish_contact(&b, "camp", contact, "completed", None, None).await, "finish A's contact through B's campaign");
    nf(s.release_contact(&b, "camp", contact).await, "release A's contact through B's campaign");
    assert!(s.campaign_contacts(&b, "camp", 0, 10).await.unwrap().iter().all(|c| c.id != contact && c.number == "+14155550125"));
    assert_eq!(s.campaign_progress(&b, "camp").await.unwrap().total, 1);
    let b_hook = s.create_webhook(&b, new_webhook("https://b.example/hook")).await.unwrap();
    let mut same_id = delivery(&b, &b_hook.id, "dlv_a", 2_000);
    same_id.status = DeliveryStatus::Failed;
    s.save_delivery(&same_id).await.unwrap();
    s.delete_agent(&b, "agent").await.unwrap();
    s.delete_webhook(&b, &b_hook.id).await.unwrap();

    // A's data is intact.
    assert_eq!(s.agent(&a, "agent").await.unwrap().name, "A's agent");
    assert_eq!(s.webhooks(&a).await.unwrap(), vec![hook]);
    assert_eq!(s.deliveries(&a, None, 10).await.unwrap(), vec![dlv]);
    assert_eq!(s.campaign_progress(&a, "camp").await.unwrap(), CampaignProgress { total: 1, pending: 1, ..Default::default() });
    assert_eq!(s.agent_version(&a, "agent", None).await.unwrap().spec.body, "secret prompt");
    assert_eq!(s.documents(&a, "kb").await.unwrap()[0].status, DocumentStatus::Pending);
    assert_eq!(s.campaigns(&a).await.unwrap()[0].status, CampaignStatus::Draft);
    assert_eq!(s.next_contacts(&a, "camp", 5).await.unwrap().len(), 1);
    assert_eq!(s.api_keys(&a).await.unwrap().len(), 1);
    assert_eq!(s.invoice(&a, "2024-02").await.unwrap().lines[0].quantity, 60_000);
}

// ---------------------------------------------------------------- agents: get, rename, delete

async fn agents_get_rename_delete(s: &dyn ControlStore) {
    let t = tenant(s).await;
    let created = s.create_agent(&t, "front", "Front desk").await.unwrap();
    assert_eq!(s.agent(&t, "front").await.unwrap(), created);
    s.publish_agent_version(&t, "front", spec("v1"), None).await.unwrap();
    s.publish_agent_version(&t, "front", spec("v2"), None).await.unwrap();

    let renamed = s.update_agent(&t, "front", "Reception").await.unwrap();
    assert_eq!((renamed.name.as_str(), renamed.latest_version, renamed.created_at), ("Reception", 2, created.created_at));
    assert_eq!(s.agent(&t, "front").await.unwrap(), renamed);
    assert!(matches!(s.update_agent(&t, "front", " ").await, Err(DataError::Invalid { .. })));
    assert!(matches!(s.update_agent(&t, "ghost", "x").await, Err(DataError::NotFound { .. })));
    assert!(matches!(s.agent(&t, "ghost").await, Err(DataError::NotFound { .. })));
    assert!(matches!(s.agent(&t, "bad id").await, Err(DataError::InvalidId(_))));

    // A bound number blocks the delete; nothing is deleted.
    let n = fresh_number();
    s.assign_number(&t, &n, "front").await.unwrap();
    let r = s.delete_agent(&t, "front").await;
    assert!(matches!(r, Err(DataError::Conflict(_))), "{r:?}");
    assert_eq!(s.agent_versions(&t, "front").await.unwrap().len(), 2);
    assert_eq!(s.agent(&t, "front").await.unwrap().name, "Reception");

    s.release_number(&t, &n).await.unwrap();
    s.delete_agent(&t, "front").await.unwrap();
    assert!(matches!(s.agent(&t, "front").await, Err(DataError::NotFound { .. })));
    assert!(matches!(s.agent_versions(&t, "front").await, Err(DataError::NotFound { .. })));
    assert!(matches!(s.agent_version(&t, "front", Some(1)).await, Err(DataError::NotFound { .. })));
    assert!(matches!(s.delete_agent(&t, "front").await, Err(DataError::NotFound { .. })));
    assert!(s.agents(&t).await.unwrap().is_empty());
    // The id is free again and its versions start over.
    s.create_agent(&t, "front", "Again").await.unwrap();
    assert_eq!(s.publish_agent_version(&t, "front", spec("fresh"), Some(0)).await.unwrap(), 1);
    // An agent with no version, and a number pointing at an agent id that does not exist.
    s.create_agent(&t, "empty", "Empty").await.unwrap();
    s.delete_agent(&t, "empty").await.unwrap();
    s.assign_number(&t, &fresh_number(), "never-created").await.unwrap();
    assert!(matches!(s.delete_agent(&t, "never-created").await, Err(DataError::NotFound { .. })));
}

// ---------------------------------------------------------------- plans

async fn plan_allowed_providers(s: &dyn ControlStore) {
    let id = common::unique("t");
    let mut p = plan();
    p.allowed_providers = Some(vec!["deepgram".into(), "claude".into(), "cartesia".into(), "local".into()]);
    let t = s.create_tenant(NewTenant { id: id.clone(), name: "P".into(), plan: p.clone() }).await.unwrap();
    assert_eq!(t.plan, p);
    assert_eq!(s.tenant(&id).await.unwrap().plan, p);
    p.allowed_providers = Some(vec![]);
    assert_eq!(s.set_plan(&id, p.clone()).await.unwrap().plan, p, "an empty list (nothing allowed) is not `any`");
    p.allowed_providers = None;
    assert_eq!(s.set_plan(&id, p.clone()).await.unwrap().plan, p);
    assert_eq!(s.ensure_tenant(&common::unique("d"), "D").await.unwrap().plan.allowed_providers, None);

    let mut bad = plan();
    bad.allowed_providers = Some(vec!["deepgram".into(), "has space".into()]);
    assert!(matches!(s.set_plan(&id, bad.clone()).await, Err(DataError::Invalid { .. })));
    let r = s.create_tenant(NewTenant { id: common::unique("t"), name: "x".into(), plan: bad }).await;
    assert!(matches!(r, Err(DataError::Invalid { .. })), "{r:?}");
    assert_eq!(s.tenant(&id).await.unwrap().plan, p, "refused plans change nothing");

    // JSON without the field (an older client) reads as "any provider".
    let old: Plan = serde_json::from_value(json!({"max_concurrent_calls": 2, "monthly_minutes": null, "retention_days": 9})).unwrap();
    assert_eq!(old.allowed_providers, None);
}


on_both!(other_tenant_sees_nothing, agents_get_rename_delete, plan_allowed_providers);
