//! Control store contract: campaigns, their contacts, and the dialer's claims on them.

use super::*;

on_both!(campaigns_and_contacts, campaign_dialer_lifecycle, campaign_claims_of_a_stopped_node);

// ---------------------------------------------------------------- campaigns

pub(super) async fn campaigns_and_contacts(s: &dyn ControlStore) {
    let t = tenant(s).await;
    assert!(matches!(s.create_campaign(&t, "c1", "ghost", "x", json!({})).await, Err(DataError::NotFound { .. })), "agent must exist");
    s.create_agent(&t, "dialer", "Dialer").await.unwrap();
    let window = json!({"days": ["mon", "tue"], "from": "09:00", "to": "17:00", "tz": "Europe/Paris"});
    let c = s.create_campaign(&t, "c1", "dialer", "Renewals", window.clone()).await.unwrap();
    assert_eq!((c.status, c.window.clone()), (CampaignStatus::Draft, window));
    assert!(matches!(s.create_campaign(&t, "c1", "dialer", "x", json!({})).await, Err(DataError::Conflict(_))));

    let contacts: Vec<(String, serde_json::Value)> = (0..5).map(|i| (format!("+1415555010{i}"), json!({"name": format!("n{i}")}))).collect();
    assert_eq!(s.add_campaign_contacts(&t, "c1", contacts.clone()).await.unwrap(), 5);
    let bad = vec![("+14155550199".to_string(), json!({})), ("not-a-number".to_string(), json!({}))];
    assert!(matches!(s.add_campaign_contacts(&t, "c1", bad).await, Err(DataError::Invalid { .. })));

    let first = s.next_contacts(&t, "c1", 2).await.unwrap();
    assert_eq!(first.iter().map(|c| c.number.as_str()).collect::<Vec<_>>(), vec!["+14155550100", "+14155550101"]);
    assert!(first.iter().all(|c| c.status == ContactStatus::Dialing && c.attempts == 0), "taking a contact is not an attempt");
    assert_eq!(first[1].vars, json!({"name": "n1"}));
    // Concurrent takers never share a contact; the invalid batch above added nothing.
    let (x, y) = futures::join!(s.next_contacts(&t, "c1", 2), s.next_contacts(&t, "c1", 2));
    let mut taken: Vec<String> = x.unwrap().into_iter().chain(y.unwrap()).map(|c| c.number).collect();
    taken.sort();
    assert_eq!(taken, vec!["+14155550102", "+14155550103", "+14155550104"]);
    assert!(s.next_contacts(&t, "c1", 10).await.unwrap().is_empty());

    s.set_campaign_status(&t, "c1", CampaignStatus::Running).await.unwrap();
    assert_eq!(s.campaigns(&t).await.unwrap()[0].status, CampaignStatus::Running);
    assert!(matches!(s.set_campaign_status(&t, "nope", CampaignStatus::Paused).await, Err(DataError::NotFound { .. })));
    assert!(matches!(s.next_contacts(&t, "nope", 1).await, Err(DataError::NotFound { .. })));
    s.set_campaign_status(&t, "c1", CampaignStatus::Completed).await.unwrap(); // off the shared running list
}

pub(super) async fn campaign_dialer_lifecycle(s: &dyn ControlStore) {
    let t = tenant(s).await;
    s.create_agent(&t, "dialer", "Dialer").await.unwrap();
    let c = s.create_campaign(&t, "renewals", "dialer", "Renewals", json!({"tz": "UTC"})).await.unwrap();
    assert_eq!(s.campaign(&t, "renewals").await.unwrap(), c);
    assert!(matches!(s.campaign(&t, "nope").await, Err(DataError::NotFound { .. })));
    let mine = |v: Vec<Campaign>| v.into_iter().filter(|c| c.tenant_id == t).map(|c| c.id).collect::<Vec<_>>();
    assert!(mine(s.running_campaigns().await.unwrap()).is_empty(), "draft is not running");
    s.create_campaign(&t, "other", "dialer", "Other", json!({})).await.unwrap();
    s.set_campaign_status(&t, "renewals", CampaignStatus::Running).await.unwrap();
    s.set_campaign_status(&t, "other", CampaignStatus::Paused).await.unwrap();
    let running = s.running_campaigns().await.unwrap().into_iter().filter(|c| c.tenant_id == t).collect::<Vec<_>>();
    assert_eq!(running, vec![Campaign { status: CampaignStatus::Running, ..c.clone() }]);

    let numbers: Vec<String> = (0..5).map(|i| format!("+1415555020{i}")).collect();
    s.add_campaign_contacts(&t, "renewals", numbers.iter().map(|n| (n.clone(), json!({"n": n}))).collect()).await.unwrap();
    let empty = CampaignProgress { total: 5, pending: 5, ..Default::default() };
    assert_eq!(s.campaign_progress(&t, "renewals").await.unwrap(), empty);
    assert_eq!(s.campaign_progress(&t, "other").await.unwrap(), CampaignProgress::default());

    let taken = s.next_contacts(&t, "renewals", 2).await.unwrap();
    let [c0, c1] = [taken[0].id, taken[1].id];
    assert!(taken.iter().all(|c| (c.status, c.attempts, c.next_attempt_at, c.last_outcome.as_deref()) == (ContactStatus::Dialing, 0, 0, None)));
    assert_eq!(s.campaign_progress(&t, "renewals").await.unwrap(), CampaignProgress { total: 5, pending: 3, dialing: 2, ..Default::default() });

    // Completed → done; another outcome with a retry time → pending, not taken before then.
    s.finish_contact(&t, "renewals", c0, "completed", Some("call-0"), None).await.unwrap();
    let later = now_ms() + 3_600_000;
    s.finish_contact(&t, "renewals", c1, "no_answer", Some("call-1"), Some(later)).await.unwrap();
    let next = s.next_contacts(&t, "renewals", 10).await.unwrap();
    assert_eq!(next.iter().map(|c| c.number.clone()).collect::<Vec<_>>(), numbers[2..].to_vec(), "c1 waits");
    let [c2, c3, c4] = [next[0].id, next[1].id, next[2].id];
    // No retry and not completed → failed; a retry time already past → due again at once.
    s.finish_contact(&t, "renewals", c2, "busy", None, None).await.unwrap();
    s.finish_contact(&t, "renewals", c4, "voicemail", Some("call-4"), Some(1)).await.unwrap();
    // A dialer shutting down gives c3 back without counting an attempt.
    s.release_contact(&t, "renewals", c3).await.unwrap();

    let conflict = |r: Result<(), DataError>, what: &str| assert!(matches!(r, Err(DataError::Conflict(_))), "{what}: {r:?}");
    conflict(s.finish_contact(&t, "renewals", c0, "completed", None, None).await, "finish a done contact");
    conflict(s.finish_contact(&t, "renewals", c1, "completed", None, None).await, "finish a pending contact");
    conflict(s.release_contact(&t, "renewals", c2).await, "release a failed contact");
    conflict(s.release_contact(&t, "renewals", c3).await, "release twice");
    assert!(matches!(s.finish_contact(&t, "renewals", i64::MAX, "completed", None, None).await, Err(DataError::NotFound { .. })));
    assert!(matches!(s.release_contact(&t, "renewals", i64::MAX).await, Err(DataError::NotFound { .. })));
    assert!(matches!(s.finish_contact(&t, "other", c0, "completed", None, None).await, Err(DataError::NotFound { .. })), "another campaign's contact");
    assert!(matches!(s.finish_contact(&t, "renewals", c3, "", None, None).await, Err(DataError::Invalid { .. })));
    assert!(matches!(s.finish_contact(&t, "renewals", c3, "no answer", None, None).await, Err(DataError::Invalid { .. })));
    assert!(matches!(s.finish_contact(&t, "renewals", c3, "x", Some("bad id"), None).await, Err(DataError::InvalidId(_))));
    assert!(matches!(s.finish_contact(&t, "renewals", c3, "x", None, Some(-1)).await, Err(DataError::Invalid { .. })));

    let again = s.next_contacts(&t, "renewals", 10).await.unwrap();
    assert_eq!(again.iter().map(|c| (c.id, c.attempts)).collect::<Vec<_>>(), vec![(c3, 0), (c4, 1)]);
    assert_eq!((again[1].last_outcome.as_deref(), again[1].last_call_id.as_deref()), (Some("voicemail"), Some("call-4")));
    s.finish_contact(&t, "renewals", c3, "completed", Some("call-3"), None).await.unwrap();
    s.finish_contact(&t, "renewals", c4, "completed", None, None).await.unwrap();

    assert_eq!(
        s.campaign_progress(&t, "renewals").await.unwrap(),
        CampaignProgress { total: 5, pending: 1, dialing: 0, done: 3, failed: 1, attempts: 6 }
    );
    // Pages in id order.
    let page1 = s.campaign_contacts(&t, "renewals", 0, 2).await.unwrap();
    let page2 = s.campaign_contacts(&t, "renewals", page1[1].id, 2).await.unwrap();
    let page3 = s.campaign_contacts(&t, "renewals", page2[1].id, 2).await.unwrap();
    assert_eq!((page1.len(), page2.len(), page3.len()), (2, 2, 1));
    assert!(s.campaign_contacts(&t, "renewals", page3[0].id, 2).await.unwrap().is_empty());
    let all: Vec<CampaignContact> = page1.into_iter().chain(page2).chain(page3).collect();
    let got: Vec<_> = all.iter().map(|c| (c.id, c.status, c.attempts, c.last_outcome.as_deref(), c.last_call_id.as_deref())).collect();
    assert_eq!(got, vec![
        (c0, ContactStatus::Done, 1, Some("completed"), Some("call-0")),
        (c1, ContactStatus::Pending, 1, Some("no_answer"), Some("call-1")),
        (c2, ContactStatus::Failed, 1, Some("busy"), None),
        (c3, ContactStatus::Done, 1, Some("completed"), Some("call-3")),
        (c4, ContactStatus::Done, 2, Some("completed"), None),
    ]);
    assert_eq!((all[1].next_attempt_at, all[1].vars.clone(), all[1].number.as_str()), (later, json!({"n": numbers[1]}), numbers[1].as_str()));
    assert!(s.campaign_contacts(&t, "other", 0, 10).await.unwrap().is_empty());
    assert!(matches!(s.campaign_contacts(&t, "nope", 0, 10).await, Err(DataError::NotFound { .. })));
    assert!(matches!(s.campaign_progress(&t, "nope").await, Err(DataError::NotFound { .. })));

    s.set_campaign_status(&t, "renewals", CampaignStatus::Completed).await.unwrap();
    assert!(mine(s.running_campaigns().await.unwrap()).is_empty());
}

async fn campaign_claims_of_a_stopped_node(s: &dyn ControlStore) {
    let t = tenant(s).await;
    s.create_agent(&t, "dialer", "Dialer").await.unwrap();
    s.create_campaign(&t, "c", "dialer", "C", json!({})).await.unwrap();
    s.add_campaign_contacts(&t, "c", (0..4).map(|i| (format!("+1415555030{i}"), json!({}))).collect()).await.unwrap();
    // node A claims two contacts and keeps renewing one; node B claims the other two
    let a = s.next_contacts(&t, "c", 2).await.unwrap();
    let b = s.next_contacts(&t, "c", 2).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let cut = now_ms();
    assert_eq!(s.touch_contacts(&t, "c", &[a[0].id]).await.unwrap(), 1);
    assert_eq!(s.touch_contacts(&t, "c", &[b[0].id, b[1].id, i64::MAX]).await.unwrap(), 2, "unknown ids touch nothing");
    assert_eq!(s.touch_contacts(&t, "c", &[]).await.unwrap(), 0);
    // a[1] was not renewed since before `cut`: its node stopped
    let (x, y) = futures::join!(s.stale_contacts(&t, "c", cut), s.stale_contacts(&t, "c", cut));
    let mut got: Vec<_> = x.unwrap().into_iter().chain(y.unwrap()).map(|c| (c.id, c.status)).collect();
    got.sort();
    assert_eq!(got, vec![(a[1].id, ContactStatus::Dialing)], "taken over once, still dialing");
    assert!(s.stale_contacts(&t, "c", cut).await.unwrap().is_empty(), "the take-over renewed the claim");
    s.finish_contact(&t, "c", a[1].id, "node_lost", None, Some(1)).await.unwrap();
    let p = s.campaign_progress(&t, "c").await.unwrap();
    assert_eq!((p.pending, p.dialing, p.attempts), (1, 3, 1));
    // a finished contact is no longer anyone's claim
    assert_eq!(s.touch_contacts(&t, "c", &[a[1].id]).await.unwrap(), 0);
    assert!(matches!(s.stale_contacts("bad id", "c", cut).await, Err(DataError::InvalidId(_))));
}

