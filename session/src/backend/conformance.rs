//! The conformance suite: every rule of the [`SessionBackend`] contract, checked against a live
//! backend. Run it from an async test of your own backend (cargo feature `conformance`):
//!
//! ```no_run
//! # use typed_session::backend::NullBackend as MyBackend;
//! # async fn my_backend_keeps_the_contract() {
//! let backend = MyBackend::default(); // on a table, prefix or database of its own
//! typed_session::backend::conformance::check(&backend).await;
//! # }
//! ```
//!
//! The suite clears the backend with [`delete_all`](SessionBackend::delete_all) before and
//! after, so give it storage no one else uses. It reads the wall clock and uses times around
//! it, so it holds both for a backend that compares `expires_at` with the `now` it is given
//! and for one whose server expires records by its own clock (as Redis does); it never sleeps.

use std::collections::BTreeSet;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

use crate::SessionId;
use crate::backend::{
    BackendError, FieldSave, MAX_VERSION, Record, SaveOutcome, SessionBackend, StorageKey,
};
use crate::clock::now_millis;
use crate::record::{Encoded, Meta, Reuse};

const SECOND: u64 = 1_000;
const HOUR: u64 = 3_600 * SECOND;

/// A `now` before every expiry: what a backend answers for it is what it physically holds.
const EPOCH: u64 = 0;

/// How many tasks race in the concurrency checks.
const RACERS: u64 = 20;

/// Runs every check of the [`SessionBackend`] contract against `backend`; panics with a message
/// naming the check that failed and what the backend did.
///
/// It covers schema creation (twice), round trips (including a 256 KiB record), missing keys,
/// compare-and-set versions and conflicts, the top of the version range, touch, expiry, purge,
/// delete, count, key listing, delete-all, 20 concurrent saves racing from one version
/// (exactly one may win), and saves through
/// [`save_fields`](SessionBackend::save_fields) that carry only some changed fields, mixed with
/// whole saves.
pub async fn check<B: SessionBackend>(backend: &B) {
    schema(backend).await;
    round_trip(backend).await;
    missing_keys(backend).await;
    versions(backend).await;
    top_versions(backend).await;
    saving_over_an_expired_record(backend).await;
    touch(backend).await;
    expiry(backend).await;
    purge(backend).await;
    delete(backend).await;
    count_and_list(backend).await;
    index(backend).await;
    racing_inserts(backend).await;
    racing_updates(backend).await;
    field_saves(backend).await;
    delete_all(backend).await;
}

async fn schema<B: SessionBackend>(backend: &B) {
    let check = "create_schema is idempotent";
    ok(check, backend.create_schema().await);
    ok(check, backend.create_schema().await);
    ok(check, backend.delete_all().await);
    equal(
        check,
        "count after delete_all",
        ok(check, backend.count(EPOCH).await),
        0,
    );
}

async fn round_trip<B: SessionBackend>(backend: &B) {
    let check = "a saved record loads back unchanged";
    let now = now_millis();
    let small = record(
        r#"{"count":1,"name":"Zoë \"quoted\" ✓ 🦀","path":"C:\\tmp"}"#,
        1,
        now + HOUR,
    );
    // Past 64 KiB, so a too-small column (MySQL `TEXT`) shows.
    let large = record(&"session data ✓ ".repeat(256 * 1024 / 16), 7, now + HOUR);
    for original in [small, large] {
        let key = fresh_key();
        saved(check, backend, &key, &original, None, now).await;
        let loaded = ok(check, backend.load(&key, now).await);
        if loaded.as_ref() != Some(&original) {
            fail(
                check,
                format!(
                    "saved {}, loaded {}",
                    show(Some(&original)),
                    show(loaded.as_ref())
                ),
            );
        }
    }
}

async fn missing_keys<B: SessionBackend>(backend: &B) {
    let check = "a key never saved is absent";
    let now = now_millis();
    let key = fresh_key();
    expect_load(check, backend, &key, now, None).await;
    equal(
        check,
        "touch",
        ok(check, backend.touch(&key, now + HOUR, now).await),
        None,
    );
    ok(check, backend.delete(&key).await);
}

async fn versions<B: SessionBackend>(backend: &B) {
    let now = now_millis();
    let key = fresh_key();
    let first = record("first", 1, now + HOUR);
    saved("save(None) creates", backend, &key, &first, None, now).await;

    let check = "save(None) conflicts with a live record";
    let intruder = record("intruder", 1, now + HOUR);
    conflict(check, backend, &key, &intruder, None, now).await;
    expect_load(check, backend, &key, now, Some(&first)).await;

    let check = "save(Some(wrong version)) conflicts";
    let second = record("second", 2, now + HOUR);
    conflict(check, backend, &key, &second, Some(2), now).await;
    expect_load(check, backend, &key, now, Some(&first)).await;

    let check = "save(Some(live version)) replaces";
    saved(check, backend, &key, &second, Some(1), now).await;
    expect_load(check, backend, &key, now, Some(&second)).await;

    let check = "save(Some(stale version)) conflicts";
    let stale = record("stale", 2, now + HOUR);
    conflict(check, backend, &key, &stale, Some(1), now).await;
    expect_load(check, backend, &key, now, Some(&second)).await;
}

/// Versions up to [`MAX_VERSION`] are stored and compared exactly (not through a floating-point
/// number, which cannot tell them apart); one at `MAX_VERSION`, which no save can follow, is a
/// malformed record.
async fn top_versions<B: SessionBackend>(backend: &B) {
    let now = now_millis();
    let key = fresh_key();
    let check = "a version just below MAX_VERSION loads and touches back";
    let below = record("below the top", MAX_VERSION - 1, now + HOUR);
    saved(check, backend, &key, &below, None, now).await;
    expect_load(check, backend, &key, now, Some(&below)).await;
    let version = ok(check, backend.touch(&key, now + HOUR, now).await);
    equal(check, "touch's answer", version, Some(MAX_VERSION - 1));

    let check = "save(Some(the version one below the live one)) conflicts";
    let top = record("at the top", MAX_VERSION, now + HOUR);
    conflict(check, backend, &key, &top, Some(MAX_VERSION - 2), now).await;

    let check = "a record at MAX_VERSION is malformed at load and touch";
    saved(check, backend, &key, &top, Some(MAX_VERSION - 1), now).await;
    malformed(check, "load", backend.load(&key, now).await);
    malformed(check, "touch", backend.touch(&key, now + HOUR, now).await);
    ok(check, backend.delete(&key).await);
}

async fn saving_over_an_expired_record<B: SessionBackend>(backend: &B) {
    let now = now_millis();
    let key = fresh_key();
    expired_record(backend, &key, now).await;

    let check = "save(Some(v)) over an expired record conflicts";
    let update = record("update", 2, now + HOUR);
    conflict(check, backend, &key, &update, Some(1), now).await;
    expect_load(check, backend, &key, now, None).await;

    let check = "save(None) over an expired record creates";
    let fresh = record("fresh", 1, now + HOUR);
    saved(check, backend, &key, &fresh, None, now).await;
    expect_load(check, backend, &key, now, Some(&fresh)).await;
}

async fn touch<B: SessionBackend>(backend: &B) {
    let check = "touch moves the expiry and keeps data and version";
    let now = now_millis();
    let key = fresh_key();
    let original = record("touched", 3, now + HOUR);
    saved(check, backend, &key, &original, None, now).await;
    let version = ok(check, backend.touch(&key, now + 2 * HOUR, now).await);
    equal(check, "touch's answer", version, Some(3));
    let moved = Record {
        expires_at: now + 2 * HOUR,
        ..original
    };
    expect_load(check, backend, &key, now, Some(&moved)).await;

    let check = "touch of an expired record answers None and does not revive it";
    let key = fresh_key();
    expired_record(backend, &key, now).await;
    let version = ok(check, backend.touch(&key, now + HOUR, now).await);
    equal(check, "touch's answer", version, None);
    expect_load(check, backend, &key, now, None).await;
}

async fn expiry<B: SessionBackend>(backend: &B) {
    let now = now_millis();
    ok("expiry", backend.delete_all().await);
    let expired = fresh_key();
    expired_record(backend, &expired, now).await;
    let due = fresh_key();
    let due_now = record("due now", 1, now);
    saved("expiry", backend, &due, &due_now, None, now - 10 * SECOND).await;
    let live = fresh_key();
    let alive = record("alive", 1, now + HOUR);
    saved("expiry", backend, &live, &alive, None, now).await;

    let check = "a record with expires_at <= now is not loaded";
    expect_load(check, backend, &expired, now, None).await;
    expect_load(check, backend, &due, now, None).await;
    expect_load(check, backend, &live, now, Some(&alive)).await;

    let check = "count sees only live records";
    equal(check, "count", ok(check, backend.count(now).await), 1);

    let check = "list_keys sees only live records";
    let keys = ok(check, backend.list_keys(now).await);
    equal(check, "list_keys", keys, vec![live]);

    let check = "touch ignores a record with expires_at <= now";
    equal(
        check,
        "touch's answer",
        ok(check, backend.touch(&due, now + HOUR, now).await),
        None,
    );
}

async fn purge<B: SessionBackend>(backend: &B) {
    let check = "delete_expired removes expired records and keeps live ones";
    let now = now_millis();
    ok(check, backend.delete_all().await);
    let expired = [fresh_key(), fresh_key()];
    for key in &expired {
        expired_record(backend, key, now).await;
    }
    let live = [fresh_key(), fresh_key()];
    let alive = record("alive", 1, now + HOUR);
    for key in &live {
        saved(check, backend, key, &alive, None, now).await;
    }

    let removed = ok(check, backend.delete_expired(now).await);
    // A backend whose server expires records by itself may answer 0, having nothing to remove.
    if removed != 2 && removed != 0 {
        fail(
            check,
            format!("2 records had expired, delete_expired answered {removed}"),
        );
    }
    for key in &expired {
        // Loading "at the epoch" would still see the record if it were physically there.
        expect_load(check, backend, key, EPOCH, None).await;
    }
    for key in &live {
        expect_load(check, backend, key, now, Some(&alive)).await;
    }
    equal(check, "count", ok(check, backend.count(now).await), 2);
    equal(
        check,
        "a second delete_expired",
        ok(check, backend.delete_expired(now).await),
        0,
    );
}

async fn delete<B: SessionBackend>(backend: &B) {
    let check = "delete removes one record";
    let now = now_millis();
    ok(check, backend.delete_all().await);
    let (gone, kept) = (fresh_key(), fresh_key());
    let value = record("value", 1, now + HOUR);
    saved(check, backend, &gone, &value, None, now).await;
    saved(check, backend, &kept, &value, None, now).await;
    ok(check, backend.delete(&gone).await);
    expect_load(check, backend, &gone, EPOCH, None).await;
    expect_load(check, backend, &kept, now, Some(&value)).await;
    ok(check, backend.delete(&gone).await);

    let check = "delete then save(None) creates again";
    saved(check, backend, &gone, &value, None, now).await;
}

async fn count_and_list<B: SessionBackend>(backend: &B) {
    let check = "count and list_keys see every live record once";
    let now = now_millis();
    ok(check, backend.delete_all().await);
    equal(
        check,
        "count of none",
        ok(check, backend.count(now).await),
        0,
    );
    equal(
        check,
        "list_keys of none",
        ok(check, backend.list_keys(now).await),
        Vec::new(),
    );
    let live: BTreeSet<StorageKey> = (0..3).map(|_| fresh_key()).collect();
    for (n, key) in (1..).zip(&live) {
        saved(
            check,
            backend,
            key,
            &record("live", n, now + HOUR),
            None,
            now,
        )
        .await;
    }
    expired_record(backend, &fresh_key(), now).await;
    equal(check, "count", ok(check, backend.count(now).await), 3);
    let listed = ok(check, backend.list_keys(now).await);
    equal(check, "number of listed keys", listed.len(), 3);
    equal(check, "listed keys", listed.into_iter().collect(), live);
}

async fn index<B: SessionBackend>(backend: &B) {
    let check = "find_by_index finds the live records saved with a value, and follows changes";
    let now = now_millis();
    // Distinct per run, so that records left by another run or backend instance do not count.
    let alice = format!(
        "alice-{}",
        fresh_key().as_str().get(..12).unwrap_or_default()
    );
    let bob = format!("bob {}", fresh_key().as_str().get(..12).unwrap_or_default());
    let found = |index: String| async move {
        let mut found = ok(check, backend.find_by_index(&index, now).await);
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    };
    let (first, second, third) = (fresh_key(), fresh_key(), fresh_key());
    let first_record = indexed("first", 1, now + HOUR, &alice);
    saved(check, backend, &first, &first_record, None, now).await;
    expect_load(check, backend, &first, now, Some(&first_record)).await;
    saved(
        check,
        backend,
        &second,
        &indexed("second", 1, now + HOUR, &alice),
        None,
        now,
    )
    .await;
    saved(
        check,
        backend,
        &third,
        &indexed("third", 1, now + HOUR, &bob),
        None,
        now,
    )
    .await;
    expired_record(backend, &fresh_key(), now).await;
    let mut alices = vec![first.clone(), second.clone()];
    alices.sort();
    let keys =
        |found: Vec<(StorageKey, Record)>| found.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    equal(
        check,
        "alice's sessions",
        keys(found(alice.clone()).await),
        alices,
    );
    let bobs = found(bob.clone()).await;
    equal(
        check,
        "bob's records",
        bobs.iter().map(|(_, r)| r.data.clone()).collect(),
        vec!["third".to_owned()],
    );
    equal(
        check,
        "bob's index as stored",
        bobs[0].1.index.clone(),
        Some(bob.clone()),
    );

    let check =
        "a save that changes the index value moves the session, a save without one drops it";
    saved(
        check,
        backend,
        &second,
        &indexed("second", 2, now + HOUR, &bob),
        Some(1),
        now,
    )
    .await;
    saved(
        check,
        backend,
        &third,
        &record("third", 2, now + HOUR),
        Some(1),
        now,
    )
    .await;
    equal(
        check,
        "alice's sessions",
        keys(found(alice.clone()).await),
        vec![first.clone()],
    );
    equal(
        check,
        "bob's sessions",
        keys(found(bob.clone()).await),
        vec![second.clone()],
    );

    let check = "deleted and expired records are not found";
    ok(check, backend.delete(&first).await);
    equal(
        check,
        "alice's sessions",
        keys(found(alice.clone()).await),
        Vec::new(),
    );
    let later = now + 2 * HOUR;
    equal(
        check,
        "bob's sessions found past their expiry",
        ok(check, backend.find_by_index(&bob, later).await).len(),
        0,
    );
}

async fn racing_inserts<B: SessionBackend>(backend: &B) {
    let check = "concurrent save(None) of one key: exactly one wins";
    let now = now_millis();
    let key = fresh_key();
    race(check, backend, &key, None, now).await;
}

async fn racing_updates<B: SessionBackend>(backend: &B) {
    let check = "concurrent save(Some(v)) from one version: exactly one wins";
    let now = now_millis();
    let key = fresh_key();
    saved(
        check,
        backend,
        &key,
        &record("start", 1, now + HOUR),
        None,
        now,
    )
    .await;
    race(check, backend, &key, Some(1), now).await;
}

/// `RACERS` saves of `key` from `expected` at once; exactly one may win.
async fn race<B: SessionBackend>(
    check: &str,
    backend: &B,
    key: &StorageKey,
    expected: Option<u64>,
    now: u64,
) {
    let version = expected.map_or(1, |version| version + 1);
    let records: Vec<Record> = (0..RACERS)
        .map(|n| record(&format!("racer {n}"), version, now + HOUR))
        .collect();
    let outcomes = join_all(
        records
            .iter()
            .map(|r| backend.save(key, r, expected, now))
            .collect(),
    )
    .await;
    one_winner(check, backend, key, now, &records, outcomes).await;
}

/// A record as the store encodes it, of three fields (a count, a note, 2,500 bytes of text),
/// copying from `previous` the members of the fields outside `changed` (by position).
fn fields_record(count: u64, note: &str, previous: Option<&Encoded>, changed: u64) -> Encoded {
    let meta = Meta {
        created_at: 1,
        long_term: count.is_multiple_of(2),
        schema: 0,
    };
    let reuse = previous.map(|previous| Reuse {
        previous: previous.clone(),
        changed,
    });
    // Long enough to be worth storing field by field (`FieldSave::worth_storing_apart`), and
    // to be stored apart by a backend that keeps only large fields apart (SQLite: 2 KiB).
    let blob = "0123456789".repeat(250);
    crate::record::encode(meta, None, false, 0b111, reuse, |fields| {
        fields.write("count", &count)?;
        fields.write("note", note)?;
        fields.write("blob", &blob)
    })
    .expect("plain fields encode")
}

/// Saves `encoded` at `version` through `save_fields`; what the backend answers.
async fn save_encoded<B: SessionBackend>(
    check: &str,
    backend: &B,
    key: &StorageKey,
    encoded: &Encoded,
    (version, expires_at): (u64, u64),
    expected_version: Option<u64>,
    now: u64,
) -> (Record, SaveOutcome) {
    let record = record(&encoded.data, version, expires_at);
    let fields = FieldSave::new(
        &record,
        encoded.head_end,
        &encoded.names,
        &encoded.spans,
        encoded.copied,
    )
    .expect("the encoder cuts its own record");
    let outcome = ok(
        check,
        backend
            .save_fields(key, &fields, expected_version, now)
            .await,
    );
    (record, outcome)
}

async fn field_saves<B: SessionBackend>(backend: &B) {
    let check = "save_fields writes what a whole save of its record writes";
    let now = now_millis();
    let key = fresh_key();
    let at = |version| (version, now + HOUR);

    let first = fields_record(1, "first", None, 0);
    let (record, outcome) = save_encoded(check, backend, &key, &first, at(1), None, now).await;
    equal(check, "a new record", outcome, SaveOutcome::Saved);
    expect_load(check, backend, &key, now, Some(&record)).await;

    // Only the count changed: the other members are copied, and may be left unwritten.
    let second = fields_record(2, "first", Some(&first), 0b001);
    let (record, outcome) = save_encoded(check, backend, &key, &second, at(2), Some(1), now).await;
    equal(check, "one changed field", outcome, SaveOutcome::Saved);
    expect_load(check, backend, &key, now, Some(&record)).await;

    let stale = fields_record(3, "stale", Some(&second), 0b011);
    let (_, outcome) = save_encoded(check, backend, &key, &stale, at(3), Some(1), now).await;
    equal(
        check,
        "a stale expected version",
        outcome,
        SaveOutcome::Conflict,
    );
    expect_load(check, backend, &key, now, Some(&record)).await;

    // A whole save in between: the next partial save must not build on what it replaced.
    let whole = fields_record(3, "whole", None, 0);
    let replaced = self::record(&whole.data, 3, now + HOUR);
    saved(check, backend, &key, &replaced, Some(2), now).await;
    let fourth = fields_record(4, "whole", Some(&whole), 0b001);
    let (record, outcome) = save_encoded(check, backend, &key, &fourth, at(4), Some(3), now).await;
    equal(check, "after a whole save", outcome, SaveOutcome::Saved);
    expect_load(check, backend, &key, now, Some(&record)).await;

    let fifth = fields_record(5, "last", Some(&fourth), 0b011);
    let (record, outcome) = save_encoded(check, backend, &key, &fifth, at(5), Some(4), now).await;
    equal(check, "two changed fields", outcome, SaveOutcome::Saved);
    expect_load(check, backend, &key, now, Some(&record)).await;

    // A field growing past the size from which a backend may store it apart (SQLite: 2 KiB),
    // beside one stored apart already, then shrinking back: what is stored apart changes.
    let long = "n".repeat(3000);
    let sixth = fields_record(6, &long, Some(&fifth), 0b011);
    let (record, outcome) = save_encoded(check, backend, &key, &sixth, at(6), Some(5), now).await;
    equal(check, "a field grown large", outcome, SaveOutcome::Saved);
    expect_load(check, backend, &key, now, Some(&record)).await;
    let seventh = fields_record(7, "short again", Some(&sixth), 0b011);
    let (record, outcome) = save_encoded(check, backend, &key, &seventh, at(7), Some(6), now).await;
    equal(check, "a field shrunk back", outcome, SaveOutcome::Saved);
    expect_load(check, backend, &key, now, Some(&record)).await;
    ok(check, backend.delete(&key).await);
}

async fn delete_all<B: SessionBackend>(backend: &B) {
    let check = "delete_all removes every record";
    let now = now_millis();
    let key = fresh_key();
    saved(
        check,
        backend,
        &key,
        &record("doomed", 1, now + HOUR),
        None,
        now,
    )
    .await;
    expired_record(backend, &fresh_key(), now).await;
    ok(check, backend.delete_all().await);
    expect_load(check, backend, &key, EPOCH, None).await;
    equal(check, "count", ok(check, backend.count(EPOCH).await), 0);
    equal(
        check,
        "list_keys",
        ok(check, backend.list_keys(EPOCH).await),
        Vec::new(),
    );
}

/// Checks that exactly one racer saved, and that its record is the one stored.
async fn one_winner<B: SessionBackend>(
    check: &str,
    backend: &B,
    key: &StorageKey,
    now: u64,
    records: &[Record],
    outcomes: Vec<Result<SaveOutcome, BackendError>>,
) {
    let mut winners = Vec::new();
    for (record, outcome) in records.iter().zip(outcomes) {
        if ok(check, outcome) == SaveOutcome::Saved {
            winners.push(record);
        }
    }
    let &[winner] = winners.as_slice() else {
        fail(
            check,
            format!("{} of {RACERS} racers got Saved", winners.len()),
        );
    };
    expect_load(check, backend, key, now, Some(winner)).await;
}

/// Saves a record under `key` that expired a second before `now`, as written ten seconds
/// earlier while it was still live.
async fn expired_record<B: SessionBackend>(backend: &B, key: &StorageKey, now: u64) {
    let record = record("expired", 1, now - SECOND);
    saved(
        "saving a record that then expires",
        backend,
        key,
        &record,
        None,
        now - 10 * SECOND,
    )
    .await;
}

async fn saved<B: SessionBackend>(
    check: &str,
    backend: &B,
    key: &StorageKey,
    record: &Record,
    expected_version: Option<u64>,
    now: u64,
) {
    let outcome = ok(
        check,
        backend.save(key, record, expected_version, now).await,
    );
    if outcome != SaveOutcome::Saved {
        fail(
            check,
            format!(
                "save({}, expected {expected_version:?}) answered {outcome:?}, not Saved",
                show(Some(record))
            ),
        );
    }
}

async fn conflict<B: SessionBackend>(
    check: &str,
    backend: &B,
    key: &StorageKey,
    record: &Record,
    expected_version: Option<u64>,
    now: u64,
) {
    let outcome = ok(
        check,
        backend.save(key, record, expected_version, now).await,
    );
    if outcome != SaveOutcome::Conflict {
        fail(
            check,
            format!(
                "save({}, expected {expected_version:?}) answered {outcome:?}, not Conflict",
                show(Some(record))
            ),
        );
    }
}

async fn expect_load<B: SessionBackend>(
    check: &str,
    backend: &B,
    key: &StorageKey,
    now: u64,
    expected: Option<&Record>,
) {
    let loaded = ok(check, backend.load(key, now).await);
    if loaded.as_ref() != expected {
        fail(
            check,
            format!(
                "load(now = {now}) gave {}, expected {}",
                show(loaded.as_ref()),
                show(expected)
            ),
        );
    }
}

/// Polls `futures` together on the current task (so they race at the server) and returns
/// their outputs in order. The suite takes `&B`, so the racers cannot be spawned as tasks.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(&mut outputs) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

fn fresh_key() -> StorageKey {
    StorageKey::for_id(SessionId::generate())
}

fn record(data: &str, version: u64, expires_at: u64) -> Record {
    Record {
        data: data.to_owned(),
        version,
        expires_at,
        index: None,
    }
}

/// [`record`] with an index value.
fn indexed(data: &str, version: u64, expires_at: u64, index: &str) -> Record {
    Record {
        index: Some(index.to_owned()),
        ..record(data, version, expires_at)
    }
}

/// A record for a failure message, its data cut short.
fn show(record: Option<&Record>) -> String {
    match record {
        None => "nothing".to_owned(),
        Some(r) => {
            let head: String = r.data.chars().take(40).collect();
            let more = if head.len() < r.data.len() { "…" } else { "" };
            format!(
                "{{ data: {head:?}{more} ({} bytes), version: {}, expires_at: {} }}",
                r.data.len(),
                r.version,
                r.expires_at
            )
        }
    }
}

fn ok<T>(check: &str, result: Result<T, BackendError>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => fail(check, format!("the backend returned an error: {error}")),
    }
}

fn malformed<T: fmt::Debug>(check: &str, what: &str, result: Result<T, BackendError>) {
    match result {
        Err(error) if error.is_malformed() => {}
        other => fail(
            check,
            format!("{what} answered {other:?}, not a malformed record"),
        ),
    }
}

fn equal<T: PartialEq + fmt::Debug>(check: &str, what: &str, seen: T, expected: T) {
    if seen != expected {
        fail(check, format!("{what} was {seen:?}, expected {expected:?}"));
    }
}

fn fail(check: &str, seen: String) -> ! {
    panic!("backend conformance check `{check}` failed: {seen}")
}
