//! PostgreSQL groups concurrent saves into one statement: every save still keeps its own
//! compare-and-set and its own answer. Hundreds of saves race here on the backend's own pool,
//! so statements carry many of them at once: creates, creates over expired rows and
//! compare-and-set replaces side by side, racing saves of one session, and a row PostgreSQL
//! refuses among good ones.

use typed_session::SessionId;
use typed_session::backend::{Record, SaveOutcome, SessionBackend, StorageKey};

use crate::common::storage::{Fixture, Postgres};
use crate::e2e::now_millis;

const HOUR: u64 = 3_600_000;

fn record(data: &str, version: u64, expires_at: u64) -> Record {
    Record {
        data: data.to_owned(),
        version,
        expires_at,
        index: None,
    }
}

/// Runs `save` for every item at once, each on a task of its own.
async fn all_at_once<B: SessionBackend + Clone>(
    backend: &B,
    saves: Vec<(StorageKey, Record, Option<u64>, u64)>,
) -> Vec<Result<SaveOutcome, String>> {
    let tasks: Vec<_> = saves
        .into_iter()
        .map(|(key, record, expected, now)| {
            let backend = backend.clone();
            tokio::spawn(async move {
                backend
                    .save(&key, &record, expected, now)
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    // Spawned above, so they all run at once; awaited in order for the answers.
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        outcomes.push(task.await.expect("no save panics"));
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_replaces_and_updates_each_land_exactly() {
    let Some(fixture) = Postgres::connected().await else {
        return;
    };
    let backend = fixture.backend();
    backend.create_schema().await.unwrap();
    let now = now_millis();
    let keys: Vec<StorageKey> = (0..300)
        .map(|_| StorageKey::for_id(SessionId::generate()))
        .collect();
    // Every third key already has a record that has expired by the time of the creates.
    for key in keys.iter().step_by(3) {
        let expiring = record("old", 7, now + 1_000);
        assert_eq!(
            backend.save(key, &expiring, None, now).await.unwrap(),
            SaveOutcome::Saved
        );
    }
    let later = now + 2_000;
    let creates = keys
        .iter()
        .map(|key| {
            (
                key.clone(),
                record(key.as_str(), 1, later + HOUR),
                None,
                later,
            )
        })
        .collect();
    let created = all_at_once(&backend, creates).await;
    assert!(
        created.iter().all(|c| c == &Ok(SaveOutcome::Saved)),
        "{created:?}"
    );

    let updates = keys
        .iter()
        .map(|key| {
            let data = format!("{key} v2");
            (key.clone(), record(&data, 2, later + HOUR), Some(1), later)
        })
        .collect();
    let updated = all_at_once(&backend, updates).await;
    assert!(
        updated.iter().all(|u| u == &Ok(SaveOutcome::Saved)),
        "{updated:?}"
    );
    for key in &keys {
        let stored = backend.load(key, later).await.unwrap().expect("saved");
        assert_eq!((stored.data, stored.version), (format!("{key} v2"), 2));
    }
    // Rows a statement wrote share its transaction id: the 300 updates took far fewer commits.
    let ids: Vec<&str> = keys.iter().map(StorageKey::as_str).collect();
    let commits: i64 = sqlx::query_scalar(&format!(
        "SELECT count(DISTINCT xmin::text) FROM \"{}\" WHERE id = ANY($1)",
        fixture.table
    ))
    .bind(&ids)
    .fetch_one(&fixture.pool)
    .await
    .unwrap();
    assert!(
        commits < 150,
        "300 concurrent saves took {commits} commits: they were not grouped"
    );
    fixture.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_saves_of_one_session_have_exactly_one_winner() {
    let Some(fixture) = Postgres::connected().await else {
        return;
    };
    let backend = fixture.backend();
    backend.create_schema().await.unwrap();
    let now = now_millis();
    let key = StorageKey::for_id(SessionId::generate());

    // The table locked, the session's create waits in its statement, and the racers queue
    // behind it: they meet in the next statement, together with other sessions' saves.
    let mut lock = fixture.pool.begin().await.unwrap();
    sqlx::query(&format!(
        "LOCK TABLE \"{}\" IN EXCLUSIVE MODE",
        fixture.table
    ))
    .execute(&mut *lock)
    .await
    .unwrap();
    let create = {
        let (backend, key) = (backend.clone(), key.clone());
        tokio::spawn(async move {
            let created = record("created", 1, now + HOUR);
            backend.save(&key, &created, None, now).await.unwrap()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let racers = (0..16).map(|n| {
        let data = format!("racer {n}");
        (key.clone(), record(&data, 2, now + HOUR), Some(1), now)
    });
    let others = (0..100).map(|n| {
        let key = StorageKey::for_id(SessionId::generate());
        let data = format!("other {n}");
        (key, record(&data, 1, now + HOUR), None, now)
    });
    let racing = tokio::spawn({
        let backend = backend.clone();
        let saves = racers.chain(others).collect();
        async move { all_at_once(&backend, saves).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    lock.commit().await.unwrap();

    assert_eq!(create.await.unwrap(), SaveOutcome::Saved);
    let outcomes = racing.await.unwrap();
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    let winners: Vec<usize> = (0..16)
        .filter(|&n| outcomes[n] == Ok(SaveOutcome::Saved))
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    assert!(
        outcomes[16..].iter().all(|o| o == &Ok(SaveOutcome::Saved)),
        "{outcomes:?}"
    );
    let stored = backend.load(&key, now).await.unwrap().expect("kept");
    assert_eq!(
        (stored.data, stored.version),
        (format!("racer {}", winners[0]), 2)
    );
    fixture.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_row_postgresql_refuses_fails_only_its_own_save() {
    let Some(fixture) = Postgres::connected().await else {
        return;
    };
    let backend = fixture.backend();
    backend.create_schema().await.unwrap();
    let now = now_millis();
    let keys: Vec<StorageKey> = (0..60)
        .map(|_| StorageKey::for_id(SessionId::generate()))
        .collect();
    // PostgreSQL text cannot hold a NUL character: that statement is refused as a whole.
    let saves = keys
        .iter()
        .enumerate()
        .map(|(n, key)| {
            let data = if n == 17 { "bad \0 data" } else { "good" };
            (key.clone(), record(data, 1, now + HOUR), None, now)
        })
        .collect();
    let outcomes = all_at_once(&backend, saves).await;
    for (n, outcome) in outcomes.iter().enumerate() {
        if n == 17 {
            assert!(outcome.is_err(), "the NUL row: {outcome:?}");
        } else {
            assert_eq!(outcome, &Ok(SaveOutcome::Saved), "row {n}");
            let stored = backend.load(&keys[n], now).await.unwrap();
            assert_eq!(stored.map(|r| r.data).as_deref(), Some("good"));
        }
    }
    assert_eq!(backend.load(&keys[17], now).await.unwrap(), None);
    fixture.cleanup().await;
}
