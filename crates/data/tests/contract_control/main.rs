#[path = "../common/mod.rs"]
mod common;

use callfunnel_data::DataError;
use callfunnel_data::control::*;
use serde_json::json;

// ---------------------------------------------------------------- harness: every behaviour runs on both backends

async fn postgres() -> PgControlStore {
    PgControlStore::connect(&common::service_env("CF_TEST_POSTGRES_URL")).await.expect("connect to the test PostgreSQL")
}

async fn sqlite() -> SqliteControlStore {
    SqliteControlStore::memory().await.expect("in-memory SQLite")
}

macro_rules! on_both {
    ($($case:ident),+ $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() { super::$case(&super::postgres().await).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() { super::$case(&super::sqlite().await).await }
        }
    )+};
}

on_both!(
    tenants_create_get_plan, numbers_unique_and_routed, numbers_validated, usage_idempotent_and_isolated,
    invoice_exact_and_immutable, billing_bad_input, agent_versions_sequential, agent_versions_concurrent,
    api_keys_lifecycle, users_and_roles, knowledge_bases_and_documents,
);

// the macro above is in scope for these (declared after it)
mod campaigns;
mod idempotency;
mod tenancy;
mod webhooks;

fn plan() -> Plan {
    Plan { max_concurrent_calls: Some(5), monthly_minutes: None, retention_days: 30, allowed_providers: None }
}

async fn tenant(s: &dyn ControlStore) -> String {
    let id = common::unique("t");
    s.create_tenant(NewTenant { id: id.clone(), name: format!("Tenant {id}"), plan: plan() }).await.expect("create tenant");
    id
}

/// A number no other test run uses.
fn fresh_number() -> String {
    format!("+1555{:010}", uuid::Uuid::new_v4().as_u128() % 10_000_000_000)
}

fn usage(tenant: &str, key: &str, metric: Metric, provider: &str, quantity: i64, at: i64) -> UsageRecord {
    UsageRecord {
        tenant_id: tenant.into(),
        call_id: "call-1".into(),
        idempotency_key: key.into(),
        metric,
        provider: provider.into(),
        quantity,
        at_unix_ms: at,
    }
}

// ---------------------------------------------------------------- tenants

async fn tenants_create_get_plan(s: &dyn ControlStore) {
    let id = tenant(s).await;
    let t = s.tenant(&id).await.unwrap();
    assert_eq!((t.id.as_str(), t.plan.clone()), (id.as_str(), plan()));
    assert!(t.created_at > 0);
    let again = s.create_tenant(NewTenant { id: id.clone(), name: "dup".into(), plan: plan() }).await;
    assert!(matches!(again, Err(DataError::Conflict(_))), "{again:?}");
    assert_eq!(s.tenant(&id).await.unwrap().name, t.name, "a refused create changes nothing");

    let p2 = Plan {
        max_concurrent_calls: None,
        monthly_minutes: Some(12_000),
        retention_days: 7,
        allowed_providers: Some(vec!["deepgram".into(), "claude".into(), "cartesia".into(), "local".into()]),
    };
    assert_eq!(s.set_plan(&id, p2.clone()).await.unwrap().plan, p2);
    assert_eq!(s.tenant(&id).await.unwrap().plan, p2);
    assert!(s.tenants().await.unwrap().iter().any(|t| t.id == id));

    let missing = common::unique("none");
    assert!(matches!(s.tenant(&missing).await, Err(DataError::NotFound { .. })));
    assert!(matches!(s.set_plan(&missing, plan()).await, Err(DataError::NotFound { .. })));
    let bad = s.create_tenant(NewTenant { id: "no spaces".into(), name: "x".into(), plan: plan() }).await;
    assert!(matches!(bad, Err(DataError::InvalidId(_))), "{bad:?}");
    let bad = s.create_tenant(NewTenant { id: common::unique("t"), name: "  ".into(), plan: plan() }).await;
    assert!(matches!(bad, Err(DataError::Invalid { .. })), "{bad:?}");

    // ensure_tenant creates once, then returns the existing tenant untouched.
    let d = common::unique("default");
    let first = s.ensure_tenant(&d, "Default").await.unwrap();
    assert_eq!((first.name.as_str(), first.plan.max_concurrent_calls), ("Default", None));
    let second = s.ensure_tenant(&d, "Other name").await.unwrap();
    assert_eq!(second, first);
    assert_eq!(s.ensure_tenant(&id, "x").await.unwrap().plan, p2);
}

// ---------------------------------------------------------------- phone numbers

async fn numbers_unique_and_routed(s: &dyn ControlStore) {
    let (a, b) = (tenant(s).await, tenant(s).await);
    let n = fresh_number();
    let assigned = s.assign_number(&a, &n, "agent-1").await.unwrap();
    assert_eq!((assigned.tenant_id.as_str(), assigned.agent_id.as_str()), (a.as_str(), "agent-1"));
    assert_eq!(s.route_number(&n).await.unwrap(), Some(NumberRoute { tenant_id: a.clone(), agent_id: "agent-1".into() }));

    // Another tenant cannot take it, nor release it, nor see it.
    let taken = s.assign_number(&b, &n, "agent-x").await;
    assert!(matches!(taken, Err(DataError::Conflict(_))), "{taken:?}");
    assert!(matches!(s.release_number(&b, &n).await, Err(DataError::NotFound { .. })));
    assert!(s.numbers(&b).await.unwrap().is_empty());
    assert_eq!(s.route_number(&n).await.unwrap().unwrap().tenant_id, a, "refused writes changed nothing");

    // Re-assigning within the owner re-points the agent.
    s.assign_number(&a, &n, "agent-2").await.unwrap();
    assert_eq!(s.route_number(&n).await.unwrap().unwrap().agent_id, "agent-2");
    let n2 = fresh_number();
    s.assign_number(&a, &n2, "agent-1").await.unwrap();
    let mut want = vec![n.clone(), n2.clone()];
    want.sort();
    assert_eq!(s.numbers(&a).await.unwrap().into_iter().map(|p| p.number).collect::<Vec<_>>(), want);

    // Released numbers stop routing and become free for another tenant.
    s.release_number(&a, &n).await.unwrap();
    assert_eq!(s.route_number(&n).await.unwrap(), None);
    assert!(matches!(s.release_number(&a, &n).await, Err(DataError::NotFound { .. })));
    s.assign_number(&b, &n, "agent-b").await.unwrap();
    assert_eq!(s.route_number(&n).await.unwrap().unwrap().tenant_id, b);
    assert_eq!(s.numbers(&a).await.unwrap().len(), 1);

    let unknown_tenant = s.assign_number(&common::unique("none"), &fresh_number(), "a").await;
    assert!(matches!(unknown_tenant, Err(DataError::NotFound { .. })), "{unknown_tenant:?}");
}

async fn numbers_validated(s: &dyn ControlStore) {
    let a = tenant(s).await;
    for bad in ["", "14155550123", "+0123456789", "+12345", "+1234567890123456", "+1 415 555 0123", "+1415555012a", "++14155550123"] {
        let r = s.assign_number(&a, bad, "agent").await;
        assert!(matches!(r, Err(DataError::Invalid { .. })), "{bad}: {r:?}");
        assert!(matches!(s.route_number(bad).await, Err(DataError::Invalid { .. })), "{bad}");
    }
    for good in ["+1234567", "+123456789012345"] {
        // shortest and longest E.164: may be taken by an earlier run of this test in a shared database
        match s.assign_number(&a, good, "agent").await {
            Ok(p) => assert_eq!(p.number, good),
            Err(DataError::Conflict(_)) => {}
            Err(e) => panic!("{good}: {e:?}"),
        }
    }
    assert!(s.numbers(&a).await.unwrap().len() <= 2);
    assert!(matches!(s.assign_number(&a, &fresh_number(), "bad agent").await, Err(DataError::InvalidId(_))));
}

// ---------------------------------------------------------------- billing

const FEB_2024: i64 = 1_706_745_600_000; // 2024-02-01T00:00:00Z
const MAR_2024: i64 = 1_709_251_200_000; // 2024-03-01T00:00:00Z

async fn usage_idempotent_and_isolated(s: &dyn ControlStore) {
    let (a, b) = (tenant(s).await, tenant(s).await);
    assert!(s.record_usage(usage(&a, "k1", Metric::SttMs, "deepgram", 1_500, FEB_2024 + 10)).await.unwrap());
    assert!(s.record_usage(usage(&a, "k2", Metric::SttMs, "deepgram", 500, FEB_2024 + 20)).await.unwrap());
    // The same key again, even with other values, is ignored.
    assert!(!s.record_usage(usage(&a, "k1", Metric::SttMs, "deepgram", 99_999, FEB_2024 + 30)).await.unwrap());
    assert!(!s.record_usage(usage(&a, "k1", Metric::CallMs, "twilio", 7, FEB_2024 + 30)).await.unwrap());
    assert!(s.record_usage(usage(&a, "k3", Metric::LlmInputTokens, "openai", 42, FEB_2024 + 40)).await.unwrap());
    let totals = s.usage_summary(&a, 0, i64::MAX).await.unwrap();
    assert_eq!(
        totals,
        vec![
            UsageTotal { metric: Metric::SttMs, provider: "deepgram".into(), quantity: 2_000 },
            UsageTotal { metric: Metric::LlmInputTokens, provider: "openai".into(), quantity: 42 },
        ]
    );
    // Window bounds: [from, to).
    assert_eq!(s.usage_summary(&a, FEB_2024 + 20, FEB_2024 + 40).await.unwrap()[0].quantity, 500);

    // Tenant B sees none of it; keys are per tenant.
    assert!(s.usage_summary(&b, 0, i64::MAX).await.unwrap().is_empty());
    assert!(s.invoice(&b, "2024-02").await.unwrap().lines.is_empty());
    assert!(s.record_usage(usage(&b, "k1", Metric::SttMs, "deepgram", 1, FEB_2024)).await.unwrap());
    assert_eq!(s.usage_summary(&a, 0, i64::MAX).await.unwrap(), totals);
    assert_eq!(s.invoice(&b, "2024-02").await.unwrap().tenant_id, b);

    let none = s.record_usage(usage(&common::unique("none"), "k", Metric::SttMs, "deepgram", 1, 0)).await;
    assert!(matches!(none, Err(DataError::NotFound { .. })), "{none:?}");
    assert!(matches!(s.invoice(&common::unique("none"), "2024-02").await, Err(DataError::NotFound { .. })));

    // Per UTC day (the console's chart): the next day's usage is its own row, the window is [from, to).
    const DAY: i64 = 86_400_000;
    assert!(s.record_usage(usage(&a, "k4", Metric::SttMs, "deepgram", 250, FEB_2024 + DAY + 5)).await.unwrap());
    assert!(s.record_usage(usage(&a, "k5", Metric::SttMs, "deepgram", 9, FEB_2024 + 2 * DAY)).await.unwrap());
    let day = |d: i64, metric, provider: &str, quantity| UsageDay { day_start_ms: FEB_2024 + d * DAY, usage: UsageTotal { metric, provider: provider.into(), quantity } };
    assert_eq!(
        s.usage_by_day(&a, FEB_2024, FEB_2024 + 2 * DAY).await.unwrap(),
        vec![day(0, Metric::SttMs, "deepgram", 2_000), day(0, Metric::LlmInputTokens, "openai", 42), day(1, Metric::SttMs, "deepgram", 250)]
    );
    assert!(s.usage_by_day(&b, FEB_2024 + DAY, FEB_2024 + 3 * DAY).await.unwrap().is_empty(), "tenant B used nothing then");
}

async fn invoice_exact_and_immutable(s: &dyn ControlStore) {
    let t = tenant(s).await;
    let (pa, pb) = (common::unique("pa"), common::unique("pb"));
    let price = |m| Price { micros_per_1000_units: m };
    // Tenant-specific prices.
    s.set_price(Some(&t), Metric::LlmInputTokens, &pa, price(2_500)).await.unwrap();
    s.set_price(Some(&t), Metric::LlmOutputTokens, "*", price(10_000)).await.unwrap();
    // Defaults: provider-specific ones lose to any tenant price, "*" is the last resort.
    s.set_price(None, Metric::LlmInputTokens, &pa, price(77_777)).await.unwrap();
    s.set_price(None, Metric::LlmOutputTokens, &pa, price(99_999)).await.unwrap();
    s.set_price(None, Metric::SttMs, &pb, price(1)).await.unwrap();
    s.set_price(None, Metric::SttMs, &pb, price(333)).await.unwrap(); // overwrites
    s.set_price(None, Metric::TtsCharacters, "*", price(15_000)).await.unwrap();

    let rec = |k: &str, m, p: &str, q, at| s.record_usage(usage(&t, k, m, p, q, at));
    rec("1", Metric::LlmInputTokens, &pa, 1_233, FEB_2024).await.unwrap(); // first ms of the period counts
    rec("2", Metric::LlmInputTokens, &pa, 1_000, MAR_2024 - 1).await.unwrap();
    rec("2", Metric::LlmInputTokens, &pa, 1_000, MAR_2024 - 1).await.unwrap(); // duplicate: ignored
    rec("3", Metric::LlmOutputTokens, &pa, 777, FEB_2024 + 5).await.unwrap();
    rec("4", Metric::SttMs, &pb, 60_001, FEB_2024 + 6).await.unwrap();
    rec("5", Metric::TtsCharacters, &pb, 101, FEB_2024 + 7).await.unwrap();
    rec("6", Metric::CallMs, &pa, 5_000, FEB_2024 + 8).await.unwrap(); // no price anywhere
    rec("7", Metric::SttMs, &pb, 1_000_000, MAR_2024).await.unwrap(); // next period
    rec("8", Metric::SttMs, &pb, 1_000_000, FEB_2024 - 1).await.unwrap(); // previous period

    let line = |metric, provider: &str, quantity, p, amount| InvoiceLine {
        metric,
        provider: provider.into(),
        quantity,
        micros_per_1000_units: p,
        amount_micros: amount,
    };
    let inv = s.invoice(&t, "2024-02").await.unwrap();
    assert_eq!(
        inv.lines,
        vec![
            line(Metric::CallMs, &pa, 5_000, 0, 0),
            line(Metric::SttMs, &pb, 60_001, 333, 19_980),             // 19,980.333 → 19,980
            line(Metric::LlmInputTokens, &pa, 2_233, 2_500, 5_583),    // 5,582.5 → 5,583 (half up)
            line(Metric::LlmOutputTokens, &pa, 777, 10_000, 7_770),    // tenant "*" beats default provider
            line(Metric::TtsCharacters, &pb, 101, 15_000, 1_515),      // default "*"
        ]
    );
    assert_eq!(inv.total_micros, 34_848);
    assert_eq!((inv.tenant_id.as_str(), inv.period.as_str()), (t.as_str(), "2024-02"));

    // Issued invoices do not change: later usage and price changes are not applied.
    rec("9", Metric::TtsCharacters, &pb, 1_000, FEB_2024 + 9).await.unwrap();
    s.set_price(Some(&t), Metric::LlmInputTokens, &pa, price(1)).await.unwrap();
    assert_eq!(s.invoice(&t, "2024-02").await.unwrap(), inv);
    let feb = s.usage_summary(&t, FEB_2024, MAR_2024).await.unwrap();
    assert_eq!(feb.iter().find(|u| u.metric == Metric::TtsCharacters).unwrap().quantity, 1_101, "usage is still recorded");

    // Another period is its own invoice.
    let mar = s.invoice(&t, "2024-03").await.unwrap();
    assert_eq!(mar.lines, vec![line(Metric::SttMs, &pb, 1_000_000, 333, 333_000)]);
    assert_ne!(mar.id, inv.id);
}

async fn billing_bad_input(s: &dyn ControlStore) {
    let t = tenant(s).await;
    for bad in ["2024-13", "2024-1", "24-01", "", "2024-02-01"] {
        assert!(matches!(s.invoice(&t, bad).await, Err(DataError::Invalid { .. })), "{bad}");
    }
    let neg = s.record_usage(usage(&t, "k", Metric::SttMs, "deepgram", -1, 0)).await;
    assert!(matches!(neg, Err(DataError::Invalid { .. })), "{neg:?}");
    let star = s.record_usage(usage(&t, "k", Metric::SttMs, "*", 1, 0)).await;
    assert!(matches!(star, Err(DataError::Invalid { .. })), "{star:?}");
    assert!(s.usage_summary(&t, 0, i64::MAX).await.unwrap().is_empty(), "refused records wrote nothing");
    let p = s.set_price(Some(&t), Metric::SttMs, "deepgram", Price { micros_per_1000_units: -5 }).await;
    assert!(matches!(p, Err(DataError::Invalid { .. })), "{p:?}");
    let p = s.set_price(Some(&common::unique("none")), Metric::SttMs, "x", Price { micros_per_1000_units: 5 }).await;
    assert!(matches!(p, Err(DataError::NotFound { .. })), "{p:?}");
    assert!(Metric::parse("call_seconds").is_err());
    for m in Metric::ALL {
        assert_eq!(Metric::parse(m.as_str()).unwrap(), *m);
    }
}

// ---------------------------------------------------------------- agents

fn spec(body: &str) -> AgentVersionSpec {
    AgentVersionSpec {
        kind: AgentKind::Prompt,
        body: body.into(),
        voice: "alloy".into(),
        language: "en-US".into(),
        providers: json!({"stt": "deepgram", "llm": {"name": "openai", "model": "gpt-4o-mini"}}),
        tools: json!([{"name": "transfer", "to": "+14155550100"}]),
        analysis: json!({"success": "booked", "schema": {"type": "object", "properties": {"time": {"type": ["string", "null"]}}}}),
    }
}

async fn agent_versions_sequential(s: &dyn ControlStore) {
    let t = tenant(s).await;
    let a = s.create_agent(&t, "sales", "Sales line").await.unwrap();
    assert_eq!((a.latest_version, a.name.as_str()), (0, "Sales line"));
    assert!(matches!(s.create_agent(&t, "sales", "again").await, Err(DataError::Conflict(_))));
    assert!(matches!(s.agent_version(&t, "sales", None).await, Err(DataError::NotFound { .. })), "no version yet");

    assert_eq!(s.publish_agent_version(&t, "sales", spec("v1"), Some(0)).await.unwrap(), 1);
    assert_eq!(s.publish_agent_version(&t, "sales", spec("v2"), None).await.unwrap(), 2);
    // A stale editor (thinks latest is 1) is refused and nothing is written.
    let stale = s.publish_agent_version(&t, "sales", spec("stale"), Some(1)).await;
    assert!(matches!(stale, Err(DataError::Conflict(_))), "{stale:?}");
    let mut rb = spec("when: greeting\nsay: hello");
    rb.kind = AgentKind::Rulebook;
    assert_eq!(s.publish_agent_version(&t, "sales", rb.clone(), Some(2)).await.unwrap(), 3, "no gap after a refusal");

    let latest = s.agent_version(&t, "sales", None).await.unwrap();
    assert_eq!((latest.version, latest.spec.clone()), (3, rb));
    assert_eq!(s.agent_version(&t, "sales", Some(1)).await.unwrap().spec, spec("v1"));
    assert!(matches!(s.agent_version(&t, "sales", Some(4)).await, Err(DataError::NotFound { .. })));
    let all = s.agent_versions(&t, "sales").await.unwrap();
    assert_eq!(all.iter().map(|v| v.version).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(all[1].spec.body, "v2");
    assert_eq!(s.agents(&t).await.unwrap().iter().map(|a| (a.id.as_str(), a.latest_version)).collect::<Vec<_>>(), vec![("sales", 3)]);

    assert!(matches!(s.publish_agent_version(&t, "nobody", spec("x"), None).await, Err(DataError::NotFound { .. })));
    assert!(matches!(s.publish_agent_version(&t, "sales", spec("  "), None).await, Err(DataError::Invalid { .. })));
    assert!(matches!(s.create_agent(&t, "bad id!", "x").await, Err(DataError::InvalidId(_))));
    assert!(matches!(s.create_agent(&common::unique("none"), "a", "x").await, Err(DataError::NotFound { .. })));
    assert_eq!(s.agent_versions(&t, "sales").await.unwrap().len(), 3, "refused publishes wrote nothing");
}

async fn agent_versions_concurrent(s: &dyn ControlStore) {
    let t = tenant(s).await;
    s.create_agent(&t, "support", "Support").await.unwrap();
    let publishes = (0..8).map(|i| s.publish_agent_version(&t, "support", spec(&format!("body {i}")), None));
    let mut got: Vec<i32> = futures::future::join_all(publishes).await.into_iter().map(|r| r.expect("publish")).collect();
    got.sort();
    assert_eq!(got, (1..=8).collect::<Vec<_>>(), "distinct and gap-free");
    let stored = s.agent_versions(&t, "support").await.unwrap();
    assert_eq!(stored.len(), 8);
    let mut bodies: Vec<_> = stored.iter().map(|v| v.spec.body.clone()).collect();
    bodies.sort();
    assert_eq!(bodies, (0..8).map(|i| format!("body {i}")).collect::<Vec<_>>(), "every publish stored once");

    // Concurrent editors who both saw version 8: exactly one wins.
    let racing = (0..4).map(|i| s.publish_agent_version(&t, "support", spec(&format!("edit {i}")), Some(8)));
    let results = futures::future::join_all(racing).await;
    assert_eq!(results.iter().filter(|r| matches!(r, Ok(9))).count(), 1, "{results:?}");
    assert_eq!(results.iter().filter(|r| matches!(r, Err(DataError::Conflict(_)))).count(), 3, "{results:?}");
    assert_eq!(s.agent_version(&t, "support", None).await.unwrap().version, 9);
}

// ---------------------------------------------------------------- API keys

async fn api_keys_lifecycle(s: &dyn ControlStore) {
    let (t, other) = (tenant(s).await, tenant(s).await);
    let scopes = vec!["calls:read".to_string(), "agents:write".to_string()];
    let (info, key) = s.create_api_key(&t, "CI deploy", scopes.clone()).await.unwrap();
    assert_eq!((info.tenant_id.as_str(), info.scopes.clone(), info.id.as_str()), (t.as_str(), scopes, key.id()));
    let plain = key.expose().to_string();
    assert!(plain.starts_with(&format!("cf_{}_", info.id)) && plain.len() == 44, "{}", plain.len());
    assert_eq!(format!("{key:?}"), format!("cf_{}_***", info.id), "Debug hides the secret");

    assert_eq!(s.verify_api_key(&plain).await.unwrap(), Some(info.clone()));
    // Same id, wrong secret (one character changed); malformed keys.
    let last = plain.chars().last().unwrap();
    let wrong = format!("{}{}", &plain[..plain.len() - 1], if last == 'A' { 'B' } else { 'A' });
    assert_eq!(s.verify_api_key(&wrong).await.unwrap(), None);
    for bad in ["", "cf_", "garbage", &plain[..plain.len() - 1], &format!("{plain}x")] {
        assert_eq!(s.verify_api_key(bad).await.unwrap(), None, "{bad:?}");
    }
    let (info2, key2) = s.create_api_key(&t, "second", vec![]).await.unwrap();
    assert_ne!(info2.id, info.id);
    assert_eq!(s.api_keys(&t).await.unwrap().len(), 2);

    // Another tenant cannot revoke it; the owner can, once.
    assert!(matches!(s.revoke_api_key(&other, &info.id).await, Err(DataError::NotFound { .. })));
    assert!(s.verify_api_key(&plain).await.unwrap().is_some());
    s.revoke_api_key(&t, &info.id).await.unwrap();
    assert_eq!(s.verify_api_key(&plain).await.unwrap(), None, "revoked");
    assert!(matches!(s.revoke_api_key(&t, &info.id).await, Err(DataError::NotFound { .. })));
    assert_eq!(s.api_keys(&t).await.unwrap(), vec![info2.clone()]);
    assert_eq!(s.verify_api_key(key2.expose()).await.unwrap(), Some(info2));
    assert!(s.api_keys(&other).await.unwrap().is_empty());

    assert!(matches!(s.create_api_key(&t, "x", vec!["has space".into()]).await, Err(DataError::Invalid { .. })));
    assert!(matches!(s.create_api_key(&t, "", vec![]).await, Err(DataError::Invalid { .. })));
    assert!(matches!(s.create_api_key(&common::unique("none"), "x", vec![]).await, Err(DataError::NotFound { .. })));
}

// ---------------------------------------------------------------- users

async fn users_and_roles(s: &dyn ControlStore) {
    let (t, other) = (tenant(s).await, tenant(s).await);
    let u = s.set_user_roles(&t, "sub-123", "ann@example.com", vec!["admin".into()]).await.unwrap();
    assert_eq!((u.email.as_str(), u.roles.clone()), ("ann@example.com", vec!["admin".to_string()]));
    s.set_user_roles(&t, "sub-123", "ann@new.example", vec!["viewer".into(), "billing".into()]).await.unwrap();
    assert_eq!(s.user_roles(&t, "sub-123").await.unwrap(), vec!["viewer".to_string(), "billing".to_string()]);
    s.set_user_roles(&t, "sub-456", "bob@example.com", vec![]).await.unwrap();
    let users = s.users(&t).await.unwrap();
    assert_eq!(users.iter().map(|u| (u.subject.as_str(), u.email.as_str())).collect::<Vec<_>>(), vec![
        ("sub-123", "ann@new.example"),
        ("sub-456", "bob@example.com")
    ]);

    assert!(matches!(s.user_roles(&other, "sub-123").await, Err(DataError::NotFound { .. })));
    assert!(matches!(s.remove_user(&other, "sub-123").await, Err(DataError::NotFound { .. })));
    assert!(s.users(&other).await.unwrap().is_empty());
    s.remove_user(&t, "sub-123").await.unwrap();
    assert!(matches!(s.user_roles(&t, "sub-123").await, Err(DataError::NotFound { .. })));
    assert_eq!(s.users(&t).await.unwrap().len(), 1);

    assert!(matches!(s.set_user_roles(&t, "s", "no-at-sign", vec![]).await, Err(DataError::Invalid { .. })));
    assert!(matches!(s.set_user_roles(&t, "s", "a@b", vec!["".into()]).await, Err(DataError::Invalid { .. })));
    assert!(matches!(s.set_user_roles(&common::unique("none"), "s", "a@b", vec![]).await, Err(DataError::NotFound { .. })));
}

// ---------------------------------------------------------------- knowledge bases

fn doc(id: &str) -> NewDocument {
    NewDocument { id: id.into(), title: format!("Doc {id}"), source: "s3://kb/faq.pdf".into(), sha256: "ab".repeat(32), chunks: 0 }
}

async fn knowledge_bases_and_documents(s: &dyn ControlStore) {
    let t = tenant(s).await;
    let kb = s.create_kb(&t, "faq", "FAQ", "text-embedding-3-small", 1536).await.unwrap();
    assert_eq!((kb.dim, kb.embed_model.as_str()), (1536, "text-embedding-3-small"));
    assert!(matches!(s.create_kb(&t, "faq", "FAQ", "m", 8).await, Err(DataError::Conflict(_))));
    assert!(matches!(s.create_kb(&t, "k0", "K", "m", 0).await, Err(DataError::Invalid { .. })));
    assert_eq!(s.kbs(&t).await.unwrap(), vec![kb]);

    let d = s.add_document(&t, "faq", doc("d1")).await.unwrap();
    assert_eq!((d.status, d.chunks), (DocumentStatus::Pending, 0));
    assert!(matches!(s.add_document(&t, "faq", doc("d1")).await, Err(DataError::Conflict(_))));
    assert!(matches!(s.add_document(&t, "nokb", doc("d2")).await, Err(DataError::NotFound { .. })));
    let mut bad = doc("d3");
    bad.sha256 = "XYZ".into();
    assert!(matches!(s.add_document(&t, "faq", bad).await, Err(DataError::Invalid { .. })));
    s.add_document(&t, "faq", doc("d2")).await.unwrap();

    s.set_document_status(&t, "faq", "d1", DocumentStatus::Ready, 42).await.unwrap();
    let docs = s.documents(&t, "faq").await.unwrap();
    assert_eq!(docs.iter().map(|d| (d.id.as_str(), d.status, d.chunks)).collect::<Vec<_>>(), vec![
        ("d1", DocumentStatus::Ready, 42),
        ("d2", DocumentStatus::Pending, 0)
    ]);
    assert!(matches!(s.set_document_status(&t, "faq", "zz", DocumentStatus::Failed, 0).await, Err(DataError::NotFound { .. })));
    s.delete_document(&t, "faq", "d2").await.unwrap();
    assert!(matches!(s.delete_document(&t, "faq", "d2").await, Err(DataError::NotFound { .. })));
    assert_eq!(s.documents(&t, "faq").await.unwrap().len(), 1);
    assert!(matches!(s.documents(&t, "nokb").await, Err(DataError::NotFound { .. })));
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// The SQLite file store uses several connections: concurrent publishes really race there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_store_concurrent_and_reopened() {
    let dir = std::env::temp_dir().join(common::unique("cf-control"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("control.db");
    let s = SqliteControlStore::open(&path).await.unwrap();
    agent_versions_concurrent(&s).await;
    campaigns::campaigns_and_contacts(&s).await;
    idempotency::idempotency_concurrent(&s).await;
    campaigns::campaign_dialer_lifecycle(&s).await;
    let t = tenant(&s).await;
    drop(s);
    let reopened = SqliteControlStore::open(&path).await.unwrap();
    assert_eq!(reopened.tenant(&t).await.unwrap().id, t, "data survives a reopen; migrations are not re-applied");
    drop(reopened);
    std::fs::remove_dir_all(&dir).unwrap();
}
