//! The outbox, on the engine `PLEXICHAT_TEST_ENGINE` names: an event written in a
//! transaction exists if and only if the transaction commits, the commit wakes the
//! consumers, and a take is undone with its transaction.

use std::time::{Duration, Instant};

use my_awesome_plugin::ActionCompleted;
use plexichat::lifecycle::PluginContext;
use plexichat::testing::TestApp;

use crate::Harness;

fn event(n: u64) -> ActionCompleted {
    ActionCompleted {
        action_number: n,
        timestamp: "2026-12-07T00:00:00Z".into(),
        note: format!("event {n}"),
    }
}

#[tokio::test]
async fn an_event_is_kept_only_with_its_transaction_and_taken_once() {
    let app = TestApp::linked().await;
    let context = PluginContext::<Harness>::new(app.runtime.clone());
    let (outbox, db) = (context.outbox(), context.db());
    let mut waiter = outbox.waiter();

    // Rolled back: gone with the change.
    let mut transaction = db.begin_write().await.unwrap();
    outbox.write(&mut transaction, &event(1)).await.unwrap();
    drop(transaction);
    assert_eq!(outbox.pending().await.unwrap(), 0);

    // Committed: there, and the consumer is woken at once rather than after its wait.
    let mut transaction = db.begin_write().await.unwrap();
    outbox.write(&mut transaction, &event(2)).await.unwrap();
    transaction.commit().await.unwrap();
    let started = Instant::now();
    waiter.wait(Duration::from_secs(30)).await;
    assert!(started.elapsed() < Duration::from_secs(30), "not woken");
    outbox.emit(&event(3)).await.unwrap();
    assert_eq!(outbox.pending().await.unwrap(), 2);

    // A take undone with its transaction leaves them; a committed one removes them.
    let mut transaction = db.begin_write().await.unwrap();
    assert_eq!(outbox.take(&mut transaction, 10).await.unwrap().len(), 2);
    drop(transaction);
    let mut transaction = db.begin_write().await.unwrap();
    let taken = outbox.take(&mut transaction, 1).await.unwrap();
    transaction.commit().await.unwrap();
    assert_eq!(taken.len(), 1, "at most the limit");
    assert_eq!(taken[0].event, "awesome.action.completed");
    assert_eq!(taken[0].plugin, "test_harness");
    assert_eq!(taken[0].payload["note"], "event 2", "oldest first");
    assert!(taken[0].event_id.starts_with("evt_"));
    let mut transaction = db.begin_write().await.unwrap();
    let rest = outbox.take(&mut transaction, 10).await.unwrap();
    transaction.commit().await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].payload["action_number"], 3);
    assert_ne!(rest[0].event_id, taken[0].event_id);
    assert_eq!(outbox.pending().await.unwrap(), 0);
}
