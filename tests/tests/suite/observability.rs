//! Observability: the metrics a real `Router` produces, read back from a recorder, and the
//! spans it logs, which show the phase, its outcome and a key prefix but never an id or data.
//!
//! Each test installs its recorder or subscriber for its own thread only and runs its requests
//! on a current-thread runtime there, so tests running in parallel neither add to its counts
//! nor see its output.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;
use typed_session::backend::StorageKey;
use typed_session::{
    SessionConfig, SessionData, SessionId, SessionLayer, SessionStore, TypedSession,
};

use crate::common::shared_map::SharedMap;
use crate::common::{Browser, StatusCode};
use crate::e2e::{app, config, store};

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// What a recorder holds: each metric with its unit, description and value. Taking it resets
/// the counters, so each test takes one.
type Snapshot = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

/// Two servers on one database: the first's store, and both routers.
async fn two_servers() -> (SessionStore<crate::e2e::Visit>, Router, Router) {
    let database = SharedMap::default();
    let a = store(database.clone(), config()).await;
    let b = store(database, config()).await;
    let (app_a, app_b) = (app(&a), app(&b));
    (a, app_a, app_b)
}

/// One metric of the snapshot: name and labels, sorted, as `name{label=value,...}`.
fn metrics_of(snapshot: Snapshot) -> BTreeMap<String, DebugValue> {
    snapshot
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|label| format!("{}={}", label.key(), label.value()))
                .collect();
            labels.sort();
            (format!("{}{{{}}}", key.name(), labels.join(",")), value)
        })
        .collect()
}

#[track_caller]
fn counter(metrics: &BTreeMap<String, DebugValue>, key: &str) -> u64 {
    match metrics.get(key) {
        Some(DebugValue::Counter(count)) => *count,
        other => panic!("{key}: {other:?} in {metrics:#?}"),
    }
}

#[track_caller]
fn samples(metrics: &BTreeMap<String, DebugValue>, key: &str) -> usize {
    match metrics.get(key) {
        Some(DebugValue::Histogram(samples)) => samples.len(),
        other => panic!("{key}: {other:?} in {metrics:#?}"),
    }
}

#[test]
fn metrics_count_creation_loads_saves_conflicts_renewal_and_destruction() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        block_on(async {
            // Two servers on one database.
            let (a, app_a, app_b) = two_servers().await;
            let mut on_a = Browser::new(&app_a);
            assert_eq!(on_a.get("/").await.body, "1"); // created and saved
            assert_eq!(on_a.get("/").await.body, "2"); // a memory hit, saved
            let mut on_b = on_a.on(&app_b);
            assert_eq!(on_b.get("/").await.body, "3"); // loaded on B, saved
            // A's copy is at the version before B's save: its save loses the race once,
            // reloads (keeping its own unsaved field) and saves.
            assert_eq!(on_a.get("/").await.body, "3");
            assert_eq!(on_a.get("/renew").await.status, StatusCode::OK); // a new record
            assert_eq!(on_a.get("/destroy").await.status, StatusCode::OK);
            // B still caches the session under the id renewed away: its save finds no record.
            assert_eq!(on_b.get("/").await.status, StatusCode::CONFLICT);
            // A second visitor, and the gauge set by a purge.
            let mut other = Browser::new(&app_a);
            assert_eq!(other.get("/").await.body, "1");
            a.purge_expired().await.unwrap();
        });
    });
    let snapshot: Snapshot = snapshotter.snapshot().into_vec();
    let described: BTreeMap<String, (Option<metrics::Unit>, Option<String>)> = snapshot
        .iter()
        .map(|(key, unit, help, _)| {
            let help = help.as_ref().map(ToString::to_string);
            (key.key().name().to_owned(), (*unit, help))
        })
        .collect();
    let (unit, help) = &described["typed_session_backend_seconds"];
    assert_eq!(*unit, Some(metrics::Unit::Seconds));
    assert!(
        help.as_deref()
            .is_some_and(|help| help.contains("backend call"))
    );
    let (unit, _) = &described["typed_session_sessions_saved_total"];
    assert_eq!(*unit, Some(metrics::Unit::Count));
    assert!(
        described.values().all(|(_, help)| help.is_some()),
        "every metric is described: {described:?}"
    );
    let metrics = metrics_of(snapshot);
    let count = |name: &str| counter(&metrics, &format!("typed_session_{name}{{session=visit}}"));
    assert_eq!(count("sessions_created_total"), 2);
    assert_eq!(count("sessions_loaded_total"), 1);
    // Four increments, the renewal's new record and the second visitor.
    assert_eq!(count("sessions_saved_total"), 6);
    // A's fourth request, and B's last one (whose record was gone when it retried).
    assert_eq!(count("save_conflicts_total"), 2);
    assert_eq!(count("sessions_renewed_total"), 1);
    assert_eq!(count("sessions_destroyed_total"), 1);
    assert_eq!(
        counter(
            &metrics,
            "typed_session_errors_total{kind=gone,session=visit}"
        ),
        1
    );
    assert_eq!(
        metrics.get("typed_session_cached_sessions{session=visit}"),
        Some(&DebugValue::Gauge(1.0.into())),
        "the second visitor, after the purge dropped the destroyed one's tombstone"
    );
    let latency = |op: &str| {
        samples(
            &metrics,
            &format!("typed_session_backend_seconds{{op={op},session=visit}}"),
        )
    };
    // One call per save attempt, won or lost; a load on B, a reload per lost race and the
    // renewal's check that the old record is still there; the renewal's delete of the old
    // record and the log-out's delete.
    assert_eq!(latency("save"), 6 + 2);
    assert_eq!(latency("load"), 1 + 2 + 1);
    assert_eq!(latency("delete"), 2);
    assert_eq!(latency("delete_expired"), 1);
    assert!(
        !metrics.contains_key("typed_session_sessions_expired_total{session=visit}"),
        "nothing expired"
    );
}

#[derive(SessionData)]
struct Brief {
    count: u64,
}

async fn brief(session: TypedSession<Brief>) -> String {
    session
        .update_count(|count| {
            *count += 1;
            *count
        })
        .to_string()
}

#[test]
fn metrics_count_sessions_found_expired() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        block_on(async {
            let store = SessionStore::<Brief>::builder()
                .config(
                    SessionConfig::default()
                        .with_secure(false)
                        .with_idle_timeout(Duration::from_millis(100)),
                )
                .build()
                .await
                .unwrap();
            let app = Router::new()
                .route("/", get(brief))
                .layer(SessionLayer::new(store.clone()));
            let mut browser = Browser::new(&app);
            assert_eq!(browser.get("/").await.body, "1");
            tokio::time::sleep(Duration::from_millis(250)).await;
            assert_eq!(browser.get("/").await.body, "1", "a fresh session");
        });
    });
    let metrics = metrics_of(snapshotter.snapshot().into_vec());
    let count = |name: &str| counter(&metrics, &format!("typed_session_{name}{{session=brief}}"));
    assert_eq!(count("sessions_expired_total"), 1);
    assert_eq!(count("sessions_created_total"), 2);
    assert!(
        !metrics
            .keys()
            .any(|key| key.starts_with("typed_session_backend_seconds")),
        "a memory-only store calls no backend"
    );
}

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn take(&self) -> String {
        let bytes = std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner));
        String::from_utf8(bytes).unwrap()
    }
}

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut buffer = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Self;

    fn make_writer(&'a self) -> Self {
        self.clone()
    }
}

/// The line of the closing span `name` with outcome `outcome`, from `log`.
#[track_caller]
fn closed<'a>(log: &'a str, name: &str, outcome: &str) -> &'a str {
    let opening = format!("{name}{{");
    let outcome = format!("outcome=\"{outcome}\"");
    log.lines()
        .find(|line| {
            line.contains(&opening) && line.contains(&outcome) && line.ends_with(": close")
        })
        .unwrap_or_else(|| panic!("no closed {name} span with {outcome} in:\n{log}"))
}

/// Every debug span and event, one line each with closed spans, written into `captured`.
fn debug_subscriber(captured: &Captured) -> impl tracing::Subscriber + Send + Sync + use<> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .without_time()
        .with_writer(captured.clone())
        .finish()
}

#[test]
fn spans_name_each_phase_with_its_outcome_and_key_prefix_but_never_the_id() {
    let captured = Captured::default();
    let subscriber = debug_subscriber(&captured);
    let secret_note = "note-Zq7Kx9Vb2Nm4";
    let (log, hot_log, ids) = tracing::subscriber::with_default(subscriber, || {
        block_on(async {
            let (_, app_a, app_b) = two_servers().await;
            let mut on_a = Browser::new(&app_a);
            on_a.get(&format!("/note?text={secret_note}")).await;
            let first: SessionId = on_a.jar["visit"].parse().unwrap();
            let mut on_b = on_a.on(&app_b);
            on_b.get("/").await; // B loads and saves
            on_a.get("/").await; // A loses a race and retries
            // A memory hit that writes nothing: no span, no event.
            let before = captured.take();
            on_a.get("/peek").await;
            let hot_log = captured.take();
            on_a.get("/renew").await;
            let renewed: SessionId = on_a.jar["visit"].parse().unwrap();
            on_a.get("/destroy").await;
            (before + &captured.take(), hot_log, [first, renewed])
        })
    });
    assert_eq!(hot_log, "", "a memory hit logged");
    closed(&log, "session.load", "found");
    closed(&log, "session.save", "saved");
    for id in ids {
        let key = StorageKey::for_id(id);
        let key = key.as_str();
        assert!(!log.contains(&id.to_string()), "the id {id} in:\n{log}");
        assert!(!log.contains(key), "a whole storage key in:\n{log}");
        assert!(
            !log.contains(&key[..16]),
            "more than a key prefix in:\n{log}"
        );
        assert!(!log.contains(secret_note), "session data in:\n{log}");
    }
    let [first, renewed] = ids.map(|id| StorageKey::for_id(id).as_str()[..8].to_owned());
    assert!(
        closed(&log, "session.renew", "renewed").contains(&format!("key={first}")),
        "the renewal names the old key's prefix:\n{log}"
    );
    assert!(
        closed(&log, "session.destroy", "destroyed").contains(&format!("key={renewed}")),
        "the destruction names the renewed key's prefix:\n{log}"
    );
}

#[test]
fn spans_show_a_load_a_lost_race_and_a_failed_save() {
    let captured = Captured::default();
    let subscriber = debug_subscriber(&captured);
    let (log, id) = tracing::subscriber::with_default(subscriber, || {
        block_on(async {
            let (_, app_a, app_b) = two_servers().await;
            let mut on_a = Browser::new(&app_a);
            on_a.get("/").await;
            let id: SessionId = on_a.jar["visit"].parse().unwrap();
            let mut on_b = on_a.on(&app_b);
            on_b.get("/").await; // B loads and saves
            on_a.get("/").await; // A loses a race and retries
            on_a.get("/destroy").await;
            assert_eq!(on_b.get("/").await.status, StatusCode::CONFLICT);
            (captured.take(), id)
        })
    });
    let key = StorageKey::for_id(id).as_str()[..8].to_owned();
    for (name, outcome) in [
        ("session.open", "existing"),
        ("session.load", "found"),
        ("session.save", "saved"),
        ("session.save", "gone"),
        ("session.destroy", "destroyed"),
    ] {
        let line = closed(&log, name, outcome);
        assert!(line.contains("session=\"visit\""), "{line}");
        if name != "session.open" {
            assert!(line.contains(&format!("key={key}")), "{line}");
        }
    }
    assert!(
        log.lines()
            .any(|line| line.contains("attempts=2") && line.ends_with(": close")),
        "the save that lost a race took two attempts:\n{log}"
    );
    assert!(
        log.contains("lost a compare-and-set race"),
        "an event per lost race:\n{log}"
    );
    assert!(!log.contains(&id.to_string()), "the id in:\n{log}");
}
