//! One contract for hot state, run against the real Redis (`scripts/services.sh up redis`) and
//! the in-process twin. Each Redis test uses its own key prefix. Waits for expiry are
//! correctness checks (a lease must be gone after its TTL), not timing assertions.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use callfunnel_data::DataError;
use callfunnel_data::hot::{HotConfig, HotState, MemoryHotState, NewDialJob, RateDecision, RedisHotState};
use futures::StreamExt;
use serde_json::json;

type State = Arc<dyn HotState>;

/// Two handles on one state (two "nodes" of the fleet).
async fn redis(lease_ttl: Duration) -> (State, State) {
    let url = common::service_env("CF_TEST_REDIS_URL");
    let prefix = common::unique("hot");
    let cfg = HotConfig { lease_ttl };
    let a = RedisHotState::connect_with(&url, &prefix, cfg.clone()).await.expect("connect redis");
    let b = RedisHotState::connect_with(&url, &prefix, cfg).await.expect("connect redis");
    (Arc::new(a), Arc::new(b))
}

async fn memory(lease_ttl: Duration) -> (State, State) {
    let s: State = Arc::new(MemoryHotState::with_config(HotConfig { lease_ttl }));
    (s.clone(), s)
}

macro_rules! contract {
    ($name:ident, $ttl:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                let (a, b) = super::redis(super::$ttl).await;
                super::$name(a, b).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                let (a, b) = super::memory(super::$ttl).await;
                super::$name(a, b).await;
            }
        }
    };
}

const LONG: Duration = Duration::from_secs(60);
const SHORT: Duration = Duration::from_millis(1200);

contract!(placement, LONG);
async fn placement(a: State, b: State) {
    assert_eq!(a.call_node("c1").await.unwrap(), None);
    a.place_call("c1", "node-a", LONG).await.unwrap();
    assert_eq!(b.call_node("c1").await.unwrap().as_deref(), Some("node-a"));
    b.place_call("c1", "node-b", LONG).await.unwrap();
    assert_eq!(a.call_node("c1").await.unwrap().as_deref(), Some("node-b"));
    a.forget_call("c1").await.unwrap();
    assert_eq!(b.call_node("c1").await.unwrap(), None);
    a.place_call("c2", "node-a", Duration::from_millis(300)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(a.call_node("c2").await.unwrap(), None, "placement outlived its ttl");
    assert!(matches!(a.place_call("bad id", "n", LONG).await, Err(DataError::InvalidId(_))));
    assert!(matches!(a.place_call("c3", "n", Duration::ZERO).await, Err(DataError::Invalid { .. })));
}

contract!(plans, LONG);
async fn plans(a: State, b: State) {
    assert_eq!(b.get_plan("c1").await.unwrap(), None);
    let plan = serde_json::json!({"tenant_id": "t1", "agent_id": "clinic", "screening": {"monologue_ms": 4000}});
    a.put_plan("c1", &plan, LONG).await.unwrap();
    assert_eq!(b.get_plan("c1").await.unwrap(), Some(plan.clone()), "another node reads it");
    a.put_plan("c2", &plan, Duration::from_millis(300)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(b.get_plan("c2").await.unwrap(), None, "a plan outlives no ttl");
    assert!(matches!(a.put_plan("bad id", &plan, LONG).await, Err(DataError::InvalidId(_))));
}

contract!(leases, LONG);
async fn leases(a: State, b: State) {
    a.acquire_call("t1", "c1", "node-a", Some(2)).await.unwrap();
    b.acquire_call("t1", "c2", "node-b", Some(2)).await.unwrap();
    let refused = a.acquire_call("t1", "c3", "node-a", Some(2)).await;
    assert!(matches!(refused, Err(DataError::Limit(_))), "{refused:?}");
    // another tenant and an unlimited acquire are not affected
    a.acquire_call("t2", "c4", "node-a", Some(1)).await.unwrap();
    a.acquire_call("t1", "c5", "node-a", None).await.unwrap();
    // re-acquiring on the same node refreshes; another tenant's call conflicts
    a.acquire_call("t1", "c1", "node-a", Some(1)).await.unwrap();
    assert!(matches!(b.acquire_call("t2", "c1", "node-b", None).await, Err(DataError::Conflict(_))));
    assert_eq!(a.active_calls_tenant("t1").await.unwrap(), 3);
    assert_eq!(a.active_calls_tenant("t2").await.unwrap(), 1);
    assert_eq!(b.active_calls_node("node-a").await.unwrap(), 3);
    assert_eq!(b.active_calls_node("node-b").await.unwrap(), 1);
    assert_eq!(b.active_calls_total().await.unwrap(), 4);
    assert!(b.release_call("c1").await.unwrap());
    assert!(!b.release_call("c1").await.unwrap(), "second release of the same call");
    assert!(!b.release_call("never").await.unwrap());
    assert!(b.release_call("c5").await.unwrap());
    a.acquire_call("t1", "c3", "node-a", Some(2)).await.unwrap();
    assert_eq!(a.active_calls_tenant("t1").await.unwrap(), 2);
    assert_eq!(a.active_calls_node("node-a").await.unwrap(), 2);
    assert_eq!(a.active_calls_total().await.unwrap(), 3);
    assert_eq!(a.heartbeat("node-a").await.unwrap(), 2);
    assert_eq!(a.heartbeat("idle-node").await.unwrap(), 0);
    assert!(matches!(a.acquire_call("t 1", "c9", "n", None).await, Err(DataError::InvalidId(_))));
}

contract!(a_lease_follows_its_call_to_another_node, SHORT);
async fn a_lease_follows_its_call_to_another_node(a: State, b: State) {
    // node-a's webhook admitted the call; its media reached node-b
    a.acquire_call("t1", "m1", "node-a", Some(1)).await.unwrap();
    b.acquire_call("t1", "m1", "node-b", Some(1)).await.unwrap();
    assert_eq!((a.active_calls_node("node-a").await.unwrap(), a.active_calls_node("node-b").await.unwrap()), (0, 1));
    assert_eq!((a.active_calls_tenant("t1").await.unwrap(), a.active_calls_total().await.unwrap()), (1, 1), "counted once");
    assert_eq!(a.heartbeat("node-a").await.unwrap(), 0, "node-a no longer keeps it alive");
    // node-a dies: the lease lives on with node-b's heartbeats
    for _ in 0..6 {
        tokio::time::sleep(SHORT / 4).await;
        assert_eq!(b.heartbeat("node-b").await.unwrap(), 1);
    }
    assert_eq!(a.active_calls_tenant("t1").await.unwrap(), 1);
    assert!(b.release_call("m1").await.unwrap());
    assert_eq!(a.active_calls_total().await.unwrap(), 0);
}

contract!(concurrent_acquires, LONG);
async fn concurrent_acquires(a: State, b: State) {
    let mut tasks = Vec::new();
    for i in 0..60 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move { s.acquire_call("busy", &format!("call-{i}"), "node", Some(7)).await }));
    }
    let (mut ok, mut limited) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(DataError::Limit(_)) => limited += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!((ok, limited), (7, 53));
    assert_eq!(a.active_calls_tenant("busy").await.unwrap(), 7);
}

contract!(crashed_node_leaks_nothing, SHORT);
async fn crashed_node_leaks_nothing(a: State, b: State) {
    a.acquire_call("t1", "a1", "node-a", Some(3)).await.unwrap();
    a.acquire_call("t1", "a2", "node-a", Some(3)).await.unwrap();
    b.acquire_call("t1", "b1", "node-b", Some(3)).await.unwrap();
    assert!(matches!(b.acquire_call("t1", "b2", "node-b", Some(3)).await, Err(DataError::Limit(_))));
    // node-b keeps beating, node-a has "crashed": wait well past the lease TTL
    for _ in 0..10 {
        tokio::time::sleep(SHORT / 4).await;
        assert_eq!(b.heartbeat("node-b").await.unwrap(), 1, "node-b's lease must survive its heartbeats");
    }
    assert_eq!(b.active_calls_node("node-a").await.unwrap(), 0);
    assert_eq!(b.active_calls_node("node-b").await.unwrap(), 1);
    assert_eq!(b.active_calls_tenant("t1").await.unwrap(), 1);
    assert_eq!(b.active_calls_total().await.unwrap(), 1);
    assert_eq!(a.heartbeat("node-a").await.unwrap(), 0, "an expired lease is not revived");
    assert!(!a.release_call("a1").await.unwrap());
    b.acquire_call("t1", "b2", "node-b", Some(3)).await.unwrap();
    // the expired call id can be taken again, by another node
    b.acquire_call("t1", "a2", "node-b", Some(3)).await.unwrap();
    assert_eq!(b.active_calls_tenant("t1").await.unwrap(), 3);
}

contract!(rate_limit, LONG);
async fn rate_limit(a: State, b: State) {
    let window = Duration::from_millis(1500);
    assert_eq!(a.rate_check("tenant:t1:dials", 3, window).await.unwrap(), RateDecision::Allowed { remaining: 2 });
    assert_eq!(b.rate_check("tenant:t1:dials", 3, window).await.unwrap(), RateDecision::Allowed { remaining: 1 });
    assert_eq!(a.rate_check("tenant:t1:dials", 3, window).await.unwrap(), RateDecision::Allowed { remaining: 0 });
    let denied = b.rate_check("tenant:t1:dials", 3, window).await.unwrap();
    let RateDecision::Denied { retry_after } = denied else { panic!("4th hit allowed: {denied:?}") };
    assert!(retry_after > Duration::ZERO && retry_after <= window, "{retry_after:?}");
    // a denied hit is not counted; other keys are independent
    assert!(a.rate_check("tenant:t2:dials", 3, window).await.unwrap().is_allowed());
    assert!(!a.rate_check("tenant:t1:dials", 0, window).await.unwrap().is_allowed());
    tokio::time::sleep(retry_after + Duration::from_millis(100)).await;
    assert!(a.rate_check("tenant:t1:dials", 3, window).await.unwrap().is_allowed(), "window did not slide");
    assert!(matches!(a.rate_check("bad key", 1, window).await, Err(DataError::InvalidId(_))));
}

fn job(tenant: &str, n: u32, not_before: Option<SystemTime>) -> NewDialJob {
    NewDialJob { tenant_id: tenant.into(), campaign_id: "camp-1".into(), payload: json!({ "to": format!("+1555000{n}") }), not_before }
}

contract!(dial_queue, LONG);
async fn dial_queue(a: State, b: State) {
    assert_eq!(a.dequeue("w1", LONG).await.unwrap(), None);
    let later = SystemTime::now() + Duration::from_secs(3600);
    let ids = [
        a.enqueue(job("t1", 1, None)).await.unwrap(),
        b.enqueue(job("t1", 2, None)).await.unwrap(),
        a.enqueue(job("t1", 3, None)).await.unwrap(),
        a.enqueue(job("t2", 4, Some(later))).await.unwrap(),
    ];
    assert_eq!(a.queue_depth().await.unwrap(), 3, "a job due in an hour is not counted");
    let first = b.dequeue("w1", LONG).await.unwrap().expect("a due job");
    assert_eq!((first.id.as_str(), first.attempts, first.tenant_id.as_str()), (ids[0].as_str(), 1, "t1"));
    assert_eq!(first.payload, json!({ "to": "+15550001" }));
    assert_eq!(first.campaign_id, "camp-1");
    let second = a.dequeue("w2", LONG).await.unwrap().expect("a due job");
    assert_eq!(second.id, ids[1]);
    assert_eq!(a.queue_depth().await.unwrap(), 1);
    assert!(a.ack(&first.id).await.unwrap());
    assert!(!a.ack(&first.id).await.unwrap(), "acked twice");
    // jobs due in the same millisecond go by id: let the clock move past job 3's due time
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(a.nack(&second.id, None).await.unwrap());
    assert!(!a.nack(&second.id, None).await.unwrap(), "not in flight any more");
    // the third job has been due longer than the nacked one
    let third = a.dequeue("w1", LONG).await.unwrap().expect("job 3");
    assert_eq!(third.id, ids[2]);
    let again = a.dequeue("w1", LONG).await.unwrap().expect("job 2 again");
    assert_eq!((again.id.as_str(), again.attempts), (ids[1].as_str(), 2));
    // nacked to the future: invisible until then
    assert!(a.nack(&again.id, Some(later)).await.unwrap());
    assert!(a.ack(&third.id).await.unwrap());
    assert_eq!(a.dequeue("w1", LONG).await.unwrap(), None);
    assert_eq!(a.queue_depth().await.unwrap(), 0);
    // ack also drops a job that waits
    assert!(b.ack(&ids[3]).await.unwrap());
    assert!(b.ack(&ids[1]).await.unwrap());
    assert!(!b.ack("j-unknown").await.unwrap());
    assert!(matches!(a.enqueue(job("bad tenant", 5, None)).await, Err(DataError::InvalidId(_))));
}

contract!(tenants_take_turns, LONG);
async fn tenants_take_turns(a: State, b: State) {
    for (tenant, n) in [("big", 4), ("small", 2), ("mid", 1)] {
        for i in 0..n {
            a.enqueue(job(tenant, i, None)).await.unwrap();
        }
    }
    assert_eq!(b.queue_depth().await.unwrap(), 7);
    let mut order = Vec::new();
    while let Some(j) = b.dequeue("w1", LONG).await.unwrap() {
        order.push(format!("{}{}", j.tenant_id, j.payload["to"].as_str().unwrap_or("?").chars().last().unwrap_or('?')));
        assert!(a.ack(&j.id).await.unwrap());
    }
    // a busy tenant does not starve the others; each tenant's own jobs stay in order
    assert_eq!(order, ["big0", "mid0", "small0", "big1", "small1", "big2", "big3"]);
    assert_eq!(b.queue_depth().await.unwrap(), 0);
}

contract!(dead_worker_job_reappears, LONG);
async fn dead_worker_job_reappears(a: State, b: State) {
    let id = a.enqueue(job("t1", 1, None)).await.unwrap();
    let got = a.dequeue("w-dies", Duration::from_millis(800)).await.unwrap().expect("job");
    assert_eq!(got.id, id);
    assert_eq!(b.dequeue("w2", LONG).await.unwrap(), None, "in flight: hidden");
    assert_eq!(b.queue_depth().await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(b.queue_depth().await.unwrap(), 1, "timed-out job counts as waiting");
    let again = b.dequeue("w2", LONG).await.unwrap().expect("job visible again");
    assert_eq!((again.id.as_str(), again.attempts), (id.as_str(), 2));
    assert!(b.ack(&id).await.unwrap());
    assert_eq!(b.queue_depth().await.unwrap(), 0);
}

async fn next(s: &mut callfunnel_data::hot::EventStream) -> serde_json::Value {
    // a guard against hanging forever, not a timing assertion
    tokio::time::timeout(Duration::from_secs(10), s.next()).await.expect("event within 10 s").expect("stream open")
}

contract!(live_events, LONG);
async fn live_events(a: State, b: State) {
    let mut s1 = b.subscribe("call-1").await.unwrap();
    let mut s1_again = a.subscribe("call-1").await.unwrap();
    let mut s2 = b.subscribe("call-2").await.unwrap();
    a.publish("call-0", &json!({"kind": "nobody listens"})).await.unwrap();
    for i in 0..3 {
        a.publish("call-1", &json!({"kind": "transcript", "n": i})).await.unwrap();
    }
    a.publish("call-2", &json!({"kind": "call_ended"})).await.unwrap();
    for i in 0..3 {
        assert_eq!(next(&mut s1).await, json!({"kind": "transcript", "n": i}));
        assert_eq!(next(&mut s1_again).await, json!({"kind": "transcript", "n": i}));
    }
    assert_eq!(next(&mut s2).await, json!({"kind": "call_ended"}));
    drop(s1);
    a.publish("call-1", &json!({"kind": "after drop"})).await.unwrap();
    assert_eq!(next(&mut s1_again).await, json!({"kind": "after drop"}));
    assert!(a.subscribe("bad id").await.is_err());
}

contract!(flags, SHORT);
async fn flags(a: State, b: State) {
    assert!(!b.flag("live-watched").await.unwrap(), "never raised");
    a.set_flag("live-watched", Duration::from_millis(400)).await.unwrap();
    assert!(b.flag("live-watched").await.unwrap(), "seen from another node");
    assert!(!b.flag("other-flag").await.unwrap());
    tokio::time::sleep(Duration::from_millis(250)).await;
    b.set_flag("live-watched", Duration::from_millis(400)).await.unwrap(); // extended
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(a.flag("live-watched").await.unwrap(), "raising again extends it");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!a.flag("live-watched").await.unwrap(), "lowered when its ttl passed");
    assert!(a.set_flag("bad name", Duration::from_secs(1)).await.is_err());
    assert!(a.set_flag("ok", Duration::ZERO).await.is_err());
}
