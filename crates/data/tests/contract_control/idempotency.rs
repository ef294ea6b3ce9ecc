//! Control store contract: idempotency keys (states, races, expiry).

use super::*;

// ---------------------------------------------------------------- idempotency keys

pub(super) fn sha(c: char) -> String {
    c.to_string().repeat(64)
}

async fn idempotency_states(s: &dyn ControlStore) {
    let t = tenant(s).await;
    assert_eq!(s.idempotency_begin(&t, "order-1", &sha('a')).await.unwrap(), IdempotencyState::New);
    assert_eq!(s.idempotency_begin(&t, "order-1", &sha('a')).await.unwrap(), IdempotencyState::InProgress);
    assert_eq!(s.idempotency_begin(&t, "order-1", &sha('A')).await.unwrap(), IdempotencyState::InProgress, "hex case does not matter");
    assert_eq!(s.idempotency_begin(&t, "order-1", &sha('b')).await.unwrap(), IdempotencyState::Mismatch);
    s.idempotency_finish(&t, "order-1", 201, r#"{"id":"x"}"#).await.unwrap();
    let done = IdempotencyState::Done { status: 201, body: r#"{"id":"x"}"#.into() };
    assert_eq!(s.idempotency_begin(&t, "order-1", &sha('a')).await.unwrap(), done);
    assert_eq!(s.idempotency_begin(&t, "order-1", &sha('b')).await.unwrap(), IdempotencyState::Mismatch);
    assert!(matches!(s.idempotency_finish(&t, "order-1", 200, "{}").await, Err(DataError::Conflict(_))), "finished once");
    assert!(matches!(s.idempotency_abort(&t, "order-1").await, Err(DataError::Conflict(_))), "a finished key stays");
    assert_eq!(s.idempotency_begin(&t, "order-1", &sha('a')).await.unwrap(), done);

    // Abort frees the key for a retry, which may carry another body.
    assert_eq!(s.idempotency_begin(&t, "order-2", &sha('c')).await.unwrap(), IdempotencyState::New);
    s.idempotency_abort(&t, "order-2").await.unwrap();
    assert_eq!(s.idempotency_begin(&t, "order-2", &sha('d')).await.unwrap(), IdempotencyState::New);
    s.idempotency_finish(&t, "order-2", 400, "").await.unwrap();
    assert_eq!(s.idempotency_begin(&t, "order-2", &sha('d')).await.unwrap(), IdempotencyState::Done { status: 400, body: String::new() });
    assert!(matches!(s.idempotency_abort(&t, "never").await, Err(DataError::NotFound { .. })));
    assert!(matches!(s.idempotency_finish(&t, "never", 200, "").await, Err(DataError::NotFound { .. })));

    // Keys: 1-255 printable ASCII; request hashes: 64 hex digits; statuses 100-599.
    let longest = "k".repeat(255);
    for good in [longest.as_str(), " spaced key ~!", "x"] {
        assert_eq!(s.idempotency_begin(&t, good, &sha('e')).await.unwrap(), IdempotencyState::New, "{good}");
    }
    let too_long = "k".repeat(256);
    for bad in ["", too_long.as_str(), "new\nline", "tab\t", "caf\u{e9}"] {
        let r = s.idempotency_begin(&t, bad, &sha('e')).await;
        assert!(matches!(r, Err(DataError::Invalid { .. })), "{bad:?}: {r:?}");
        assert!(matches!(s.idempotency_abort(&t, bad).await, Err(DataError::Invalid { .. })), "{bad:?}");
    }
    for bad in ["abc".to_string(), "g".repeat(64), "a".repeat(65)] {
        assert!(matches!(s.idempotency_begin(&t, "k2", &bad).await, Err(DataError::Invalid { .. })), "{bad}");
    }
    assert!(matches!(s.idempotency_finish(&t, "x", 99, "").await, Err(DataError::Invalid { .. })));
    assert!(matches!(s.idempotency_finish(&t, "x", 600, "").await, Err(DataError::Invalid { .. })));
    s.idempotency_finish(&t, "x", 599, "e").await.unwrap();
    let r = s.idempotency_begin(&common::unique("none"), "k", &sha('a')).await;
    assert!(matches!(r, Err(DataError::NotFound { .. })), "{r:?}");
}

pub(super) async fn idempotency_concurrent(s: &dyn ControlStore) {
    let t = tenant(s).await;
    let racing = (0..20).map(|_| s.idempotency_begin(&t, "same-key", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    let results = futures::future::join_all(racing).await;
    assert_eq!(results.iter().filter(|r| matches!(r, Ok(IdempotencyState::New))).count(), 1, "{results:?}");
    assert_eq!(results.iter().filter(|r| matches!(r, Ok(IdempotencyState::InProgress))).count(), 19, "{results:?}");
}

/// Rows older than 24 h are forgotten: `backdate(tenant, key, ms)` ages a row with SQL on the
/// store's own database.
async fn idempotency_expires(s: &dyn ControlStore, backdate: impl AsyncFn(&str, &str, i64)) {
    const HOUR: i64 = 3_600_000;
    let t = tenant(s).await;
    for key in ["old-done", "old-running", "recent", "other"] {
        assert_eq!(s.idempotency_begin(&t, key, &sha('a')).await.unwrap(), IdempotencyState::New);
    }
    s.idempotency_finish(&t, "old-done", 201, "first").await.unwrap();
    s.idempotency_finish(&t, "recent", 200, "kept").await.unwrap();
    backdate(&t, "old-done", 25 * HOUR).await;
    backdate(&t, "old-running", 25 * HOUR).await;
    backdate(&t, "other", 25 * HOUR).await;
    backdate(&t, "recent", 23 * HOUR).await;

    assert_eq!(s.idempotency_begin(&t, "old-done", &sha('b')).await.unwrap(), IdempotencyState::New, "an expired key is new again");
    assert_eq!(s.idempotency_begin(&t, "old-done", &sha('b')).await.unwrap(), IdempotencyState::InProgress);
    assert_eq!(s.idempotency_begin(&t, "old-running", &sha('a')).await.unwrap(), IdempotencyState::New, "an expired in-progress key too");
    assert_eq!(s.idempotency_begin(&t, "recent", &sha('a')).await.unwrap(), IdempotencyState::Done { status: 200, body: "kept".into() });
    // Expired rows are deleted, not only ignored (abort would find an in-progress row).
    assert!(matches!(s.idempotency_abort(&t, "other").await, Err(DataError::NotFound { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_expires_postgres() {
    let pool = sqlx::PgPool::connect(&common::service_env("CF_TEST_POSTGRES_URL")).await.unwrap();
    idempotency_expires(&postgres().await, async |t: &str, key: &str, ms: i64| {
        let q = sqlx::query("UPDATE idempotency_keys SET created_at = created_at - $3 WHERE tenant_id = $1 AND idem_key = $2");
        assert_eq!(q.bind(t).bind(key).bind(ms).execute(&pool).await.unwrap().rows_affected(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_expires_sqlite() {
    let dir = std::env::temp_dir().join(common::unique("cf-idem"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("control.db");
    let s = SqliteControlStore::open(&path).await.unwrap();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    idempotency_expires(&s, async |t: &str, key: &str, ms: i64| {
        let q = sqlx::query("UPDATE idempotency_keys SET created_at = created_at - $3 WHERE tenant_id = $1 AND idem_key = $2");
        assert_eq!(q.bind(t).bind(key).bind(ms).execute(&pool).await.unwrap().rows_affected(), 1);
    })
    .await;
    drop((s, pool));
    std::fs::remove_dir_all(&dir).unwrap();
}

on_both!(idempotency_states, idempotency_concurrent);
