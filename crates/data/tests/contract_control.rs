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
    invoice_exact_and_immutable, billing_bad_input,
);

fn plan() -> Plan {
    Plan { max_concurrent_calls: Some(5), monthly_minutes: None, retention_days: 30 }
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

    let p2 = Plan { max_concurrent_calls: None, monthly_minutes: Some(12_000), retention_days: 7 };
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
