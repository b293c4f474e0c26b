//! The end-to-end suite every persistent backend passes: a real `Router`, real cookies, stores
//! that restart, two stores on one database, a backend that fails. Written once; each backend
//! module (in `backends`) instantiates it with `e2e_suite!` and its [`Fixture`].
#![allow(dead_code, unreachable_pub)]

mod devices;
pub mod wrapper;

pub use devices::{
    a_handler_saves_after_its_response_and_verifies, a_log_in_past_the_cap_ends_the_oldest_session,
    a_users_sessions_are_listed_on_every_server, admin_api_works_on, cap_holds_on,
    lists_and_log_outs_work_on, logging_out_other_devices_ends_them_everywhere,
    the_admin_api_reads_counts_destroys_and_clears,
};

use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use typed_session::backend::{SessionBackend, StorageKey};
use typed_session::{
    SessionConfig, SessionData, SessionId, SessionLayer, SessionStore, TypedSession,
};

use crate::common::{Browser, Reply, StatusCode, get_with_cookie, with_route};
use wrapper::Instrumented;

/// One backend under test: fresh, isolated storage (its own table or key prefix).
pub use crate::common::storage::Fixture;

#[derive(SessionData)]
pub struct Visit {
    count: u64,
    note: Option<String>,
    #[session(memory_only)]
    scratch: Option<String>,
}

#[derive(serde::Deserialize)]
struct Text {
    text: String,
}

async fn increment(session: TypedSession<Visit>) -> String {
    session
        .update_count(|count| {
            *count += 1;
            *count
        })
        .to_string()
}

async fn peek(session: TypedSession<Visit>) -> String {
    format!(
        "{} {:?} {:?} long_term={}",
        session.count(),
        session.note(),
        session.scratch(),
        session.is_long_term()
    )
}

async fn set_note(session: TypedSession<Visit>, Query(text): Query<Text>) {
    session.set_note(Some(text.text));
}

async fn set_scratch(session: TypedSession<Visit>, Query(text): Query<Text>) {
    session.set_scratch(Some(text.text));
}

async fn renew(session: TypedSession<Visit>) {
    session.renew();
}

async fn destroy(session: TypedSession<Visit>) {
    session.destroy();
}

async fn remember(session: TypedSession<Visit>) {
    session.set_long_term(true);
}

pub fn config() -> SessionConfig {
    SessionConfig::default().with_secure(false)
}

pub async fn store<B: SessionBackend>(backend: B, config: SessionConfig) -> SessionStore<Visit> {
    SessionStore::<Visit>::builder()
        .backend(backend)
        .config(config)
        .build()
        .await
        .unwrap()
}

pub fn app(store: &SessionStore<Visit>) -> Router {
    Router::new()
        .route("/", get(increment))
        .route("/peek", get(peek))
        .route("/note", get(set_note))
        .route("/scratch", get(set_scratch))
        .route("/renew", get(renew))
        .route("/destroy", get(destroy))
        .route("/remember", get(remember))
        .layer(SessionLayer::new(store.clone()))
}

async fn server<F: Fixture>(fixture: &F) -> Router {
    app(&store(fixture.backend(), config()).await)
}

pub fn cookie_of(browser: &Browser) -> String {
    format!("visit={}", browser.jar["visit"])
}

fn id_of(browser: &Browser) -> SessionId {
    browser.jar["visit"].parse().unwrap()
}

pub async fn counter_survives_a_store_restart<F: Fixture>(fixture: &F) {
    let mut browser = Browser::new(&server(fixture).await);
    for expected in 1..=3 {
        assert_eq!(browser.get("/").await.body, expected.to_string());
    }
    let mut restarted = browser.on(&server(fixture).await);
    assert_eq!(
        restarted.get("/").await.body,
        "4",
        "the count survived the restart"
    );
    assert!(restarted.get("/").await.set_cookies.is_empty());
}

pub async fn cached_requests_make_no_backend_round_trips<F: Fixture>(fixture: &F) {
    let backend = Instrumented::new(fixture.backend());
    let calls = backend.calls();
    let app = app(&store(backend, config()).await);
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    let after_create = calls.get();
    assert_eq!(after_create, 1, "creating a session is one save");
    for _ in 0..20 {
        browser.get("/peek").await;
    }
    assert_eq!(calls.get(), after_create, "cached reads touch no backend");
    for _ in 0..5 {
        browser.get("/").await;
    }
    assert_eq!(
        calls.get(),
        after_create + 5,
        "each changing request is exactly one save"
    );
    let fresh_read = Browser::new(&app).get("/peek").await;
    assert!(fresh_read.set_cookies.is_empty());
    assert_eq!(
        calls.get(),
        after_create + 5,
        "a new visitor's read costs nothing"
    );
}

pub async fn memory_only_fields_stay_in_memory<F: Fixture>(fixture: &F) {
    let mut browser = Browser::new(&server(fixture).await);
    browser.get("/scratch?text=ephemeral-secret").await;
    browser.get("/note?text=durable-note").await;
    assert_eq!(
        browser.get("/peek").await.body,
        "0 Some(\"durable-note\") Some(\"ephemeral-secret\") long_term=false"
    );
    let dump = fixture.dump().await;
    assert!(dump.contains("durable-note"), "{dump}");
    assert!(
        !dump.contains("ephemeral-secret"),
        "a memory_only value reached the backend: {dump}"
    );
    let mut restarted = browser.on(&server(fixture).await);
    assert_eq!(
        restarted.get("/peek").await.body,
        "0 Some(\"durable-note\") None long_term=false"
    );
}

pub async fn ids_are_hashed_at_rest<F: Fixture>(fixture: &F) {
    let mut browser = Browser::new(&server(fixture).await);
    browser.get("/").await;
    let id = id_of(&browser);
    let dump = fixture.dump().await;
    assert!(
        !dump.contains(&id.to_string()),
        "a plaintext session id at rest: {dump}"
    );
    assert!(
        dump.contains(StorageKey::for_id(id).as_str()),
        "the hashed key is there: {dump}"
    );
}

pub async fn renewal_moves_the_record_and_kills_the_old_id<F: Fixture>(fixture: &F) {
    let app = server(fixture).await;
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    browser.get("/").await;
    let old = cookie_of(&browser);
    let reply = browser.get("/renew").await;
    assert!(reply.cookie("visit").is_some(), "renewal sets the new id");
    assert_ne!(cookie_of(&browser), old);
    assert_eq!(browser.get("/").await.body, "3", "data kept");
    let dump = fixture.dump().await;
    let old_key = StorageKey::for_id(old["visit=".len()..].parse().unwrap());
    assert!(
        !dump.contains(old_key.as_str()),
        "the old record is gone: {dump}"
    );

    let other_server = server(fixture).await;
    assert_eq!(
        get_with_cookie(&other_server, "/", &old).await.body,
        "1",
        "old id dead everywhere"
    );
    assert_eq!(get_with_cookie(&app, "/", &old).await.body, "1");
    let mut restarted = browser.on(&other_server);
    assert_eq!(
        restarted.get("/").await.body,
        "4",
        "the new id works on another server"
    );
}

/// A renewal whose old record cannot be deleted fails as a whole: the client keeps its old
/// id, whose record is intact and keeps taking writes, and the new record does not linger.
pub async fn a_failed_renewal_keeps_the_session_under_its_old_id<F: Fixture>(fixture: &F) {
    let backend = Instrumented::new(fixture.backend());
    let deletes = backend.failing_deletes();
    let app = app(&store(backend, config()).await);
    let mut browser = Browser::new(&app);
    for _ in 0..3 {
        browser.get("/").await;
    }
    let old = cookie_of(&browser);

    deletes.set(1);
    let reply = browser.get("/renew").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.set_cookies.is_empty(), "no new id: {reply:?}");
    assert_eq!(cookie_of(&browser), old);

    assert_eq!(browser.get("/").await.body, "4", "the old id still works");
    let elsewhere = browser.on(&server(fixture).await).get("/peek").await.body;
    assert!(
        elsewhere.starts_with("4 "),
        "its record took the write: {elsewhere}"
    );
    let stored = fixture.backend().count(now_millis()).await.unwrap();
    assert_eq!(stored, 1, "the new record was removed");
}

/// A log-in (a write and a renewal) whose renewal fails on the backend answers 503 and leaves
/// nothing behind: the old id does not carry the write (which would log in an id an attacker
/// planted), on this server or any other.
pub async fn a_failed_log_in_leaves_the_old_id_as_it_was<F: Fixture>(fixture: &F) {
    async fn log_in(session: TypedSession<Visit>) {
        session.set_note(Some("logged in".to_owned()));
        session.renew();
    }
    let backend = Instrumented::new(fixture.backend());
    let switch = backend.switch();
    let store = store(backend, config()).await;
    let app = with_route(app(&store), &store, "/log-in", log_in);
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    switch.set_down(true);
    let reply = browser.get("/log-in").await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    switch.set_down(false);
    let here = browser.get("/peek").await.body;
    assert!(here.starts_with("1 None "), "not logged in here: {here}");
    let elsewhere = browser.on(&server(fixture).await).get("/peek").await.body;
    assert!(
        elsewhere.starts_with("1 None "),
        "nor elsewhere: {elsewhere}"
    );
}

pub async fn destroy_deletes_the_record<F: Fixture>(fixture: &F) {
    let app = server(fixture).await;
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    let cookie = cookie_of(&browser);
    let key = StorageKey::for_id(id_of(&browser));
    browser.get("/destroy").await;
    assert!(!fixture.dump().await.contains(key.as_str()));
    assert_eq!(
        get_with_cookie(&server(fixture).await, "/", &cookie)
            .await
            .body,
        "1"
    );
}

pub async fn two_stores_keep_each_others_writes_to_different_fields<F: Fixture>(fixture: &F) {
    let first = server(fixture).await;
    let second = server(fixture).await;
    let mut browser = Browser::new(&first);
    browser.get("/note?text=start").await;
    let cookie = cookie_of(&browser);
    // Both servers have the session cached before the race.
    get_with_cookie(&second, "/peek", &cookie).await;

    let mut tasks = Vec::new();
    for round in 0..20 {
        let (first, second) = (first.clone(), second.clone());
        let (cookie_a, cookie) = (cookie.clone(), cookie.clone());
        tasks.push(tokio::spawn(async move {
            assert_eq!(
                get_with_cookie(&first, "/", &cookie_a).await.status,
                StatusCode::OK
            );
        }));
        tasks.push(tokio::spawn(async move {
            let path = format!("/note?text=note{round}");
            assert_eq!(
                get_with_cookie(&second, &path, &cookie).await.status,
                StatusCode::OK
            );
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let third = server(fixture).await;
    let body = get_with_cookie(&third, "/peek", &cookie).await.body;
    assert!(
        body.starts_with("20 Some(\"note"),
        "both servers' writes survive: {body}"
    );
}

/// A session large enough that each save copies its unchanged fields from the record it wrote
/// last: what every server reads back is the whole session, after one-field saves, after
/// another server's write (the copy must not outlive the record it came from) and after a
/// renewal.
pub async fn one_field_saves_of_a_large_session_keep_every_field<F: Fixture>(fixture: &F) {
    let first = server(fixture).await;
    let second = server(fixture).await;
    // Long enough to be patched, and stored apart by every backend that can (SQLite: 2 KiB).
    let (long_a, long_b) = ("a".repeat(3000), "b".repeat(3000));
    let mut browser = Browser::new(&first);
    browser.get(&format!("/note?text={long_a}")).await;
    for _ in 0..3 {
        assert_eq!(browser.get("/").await.status, StatusCode::OK);
    }
    let peek = |server: &Router, cookie: String| {
        let server = server.clone();
        async move { get_with_cookie(&server, "/peek", &cookie).await.body }
    };
    let expected = |count: u64, note: &str| format!("{count} Some({note:?}) None long_term=false");
    assert_eq!(
        peek(&second, cookie_of(&browser)).await,
        expected(3, &long_a)
    );

    let path = format!("/note?text={long_b}");
    assert_eq!(
        get_with_cookie(&second, &path, &cookie_of(&browser))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(browser.get("/").await.body, "4");
    let third = server(fixture).await;
    assert_eq!(
        peek(&third, cookie_of(&browser)).await,
        expected(4, &long_b)
    );

    browser.get("/renew").await;
    assert_eq!(browser.get("/").await.body, "5");
    let fourth = server(fixture).await;
    assert_eq!(
        peek(&fourth, cookie_of(&browser)).await,
        expected(5, &long_b)
    );
}

/// A rolling change of `with_partial_writes`: servers storing field by field (the fixture's
/// backend) and whole (`whole`, on the same storage) serve one session in turn, each reading
/// what the other stored and writing it its own way.
pub async fn servers_with_and_without_partial_writes_share_sessions<F: Fixture>(
    fixture: &F,
    whole: F::Backend,
) {
    // Each request confirms its session with the backend (as one after an announcement does),
    // so that each server increments what the other stored.
    let touching = || config().with_touch_interval(Duration::from_millis(1));
    let by_field = app(&store(fixture.backend(), touching()).await);
    let whole_server = app(&store(whole.clone(), touching()).await);
    // Long enough to be stored apart on every backend (SQLite keeps fields under 2 KiB in the
    // session's row).
    let long = "n".repeat(3000);
    let mut browser = Browser::new(&by_field);
    browser.get(&format!("/note?text={long}")).await;
    assert_eq!(browser.get("/").await.body, "1");
    assert_eq!(browser.get("/").await.body, "2", "a partial save");
    let cookie = cookie_of(&browser);

    let past_the_touch_interval = || tokio::time::sleep(Duration::from_millis(5));
    past_the_touch_interval().await;
    assert_eq!(get_with_cookie(&whole_server, "/", &cookie).await.body, "3");
    past_the_touch_interval().await;
    assert_eq!(
        browser.get("/").await.body,
        "4",
        "over a session stored whole"
    );
    assert_eq!(browser.get("/").await.body, "5");
    past_the_touch_interval().await;
    let fresh_whole = app(&store(whole, config()).await);
    let fresh_by_field = app(&store(fixture.backend(), config()).await);
    for server in [&whole_server, &by_field, &fresh_whole, &fresh_by_field] {
        let seen = get_with_cookie(server, "/peek", &cookie).await.body;
        assert_eq!(seen, format!("5 Some({long:?}) None long_term=false"));
    }
}

/// A newer stored copy read while a save of this server is on its way (a touch finds another
/// server's write) must not replace the fields that save is writing: should the save then lose
/// its race, it would retry with the stored values and drop an acknowledged write.
pub async fn a_newer_copy_read_during_a_save_keeps_the_fields_being_saved<F: Fixture>(fixture: &F) {
    let backend = Instrumented::new(fixture.backend());
    let gate = backend.gate();
    let touching = config().with_touch_interval(Duration::from_millis(1));
    let first = app(&store(backend, touching).await);
    let second = server(fixture).await;
    let mut browser = Browser::new(&first);
    assert_eq!(browser.get("/").await.body, "1");
    let cookie = cookie_of(&browser);

    gate.close();
    let increment = tokio::spawn({
        let (first, cookie) = (first.clone(), cookie.clone());
        async move { get_with_cookie(&first, "/", &cookie).await }
    });
    for _ in 0..500 {
        if gate.waiting() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(gate.waiting(), 1, "the increment's save waits at the gate");
    let noted = get_with_cookie(&second, "/note?text=elsewhere", &cookie).await;
    assert_eq!(noted.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let during = tokio::time::timeout(
        Duration::from_secs(5),
        get_with_cookie(&first, "/peek", &cookie),
    )
    .await
    .expect("a read does not wait for a save");
    gate.open();
    let both = "2 Some(\"elsewhere\") None long_term=false";
    assert_eq!(
        during.body, both,
        "the touch took the note and kept the count"
    );

    let incremented = increment.await.unwrap();
    assert_eq!(
        (incremented.status, incremented.body.as_str()),
        (StatusCode::OK, "2")
    );
    let third = server(fixture).await;
    assert_eq!(get_with_cookie(&third, "/peek", &cookie).await.body, both);
}

/// Another server that keeps saving first: the save retries (reload, merge, compare-and-set)
/// for as long as the burst lasts, here more races than any small fixed limit, then stores this
/// request's write on top of the rival's record.
pub async fn a_save_outlasts_a_burst_of_another_servers_wins<F: Fixture>(fixture: &F) {
    let backend = Instrumented::new(fixture.backend());
    let rival = backend.rival();
    let mut browser = Browser::new(&app(&store(backend, config()).await));
    assert_eq!(browser.get("/").await.body, "1");

    rival.wins(20);
    let reply = browser.get("/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body, "2");
    assert_eq!(rival.won(), 20);
    let restarted = browser.on(&server(fixture).await).get("/peek").await;
    assert!(
        restarted.body.starts_with("2 "),
        "the retry stored this request's write: {}",
        restarted.body
    );
}

/// Same field, two servers: last writer wins. Each server counts exactly on its own (its
/// parallel requests are serialised on the live value), on top of the value it last loaded;
/// the stored result is the value of the server that saved last. Here both start from 0 and
/// make 250 increments each, so each server ends between 250 (it never loaded the other's
/// counts: no announcements) and 500, and what is stored is the last writer's value.
pub async fn two_stores_on_one_field_last_writer_wins<F: Fixture>(fixture: &F) {
    let first = server(fixture).await;
    let second = server(fixture).await;
    let mut browser = Browser::new(&first);
    browser.get("/note?text=start").await;
    let cookie = cookie_of(&browser);
    get_with_cookie(&second, "/peek", &cookie).await;

    let mut tasks = Vec::new();
    for worker in 0..50 {
        let app = if worker % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let cookie = cookie.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                let reply = get_with_cookie(&app, "/", &cookie).await;
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let count = |body: &str| -> u64 {
        body.split(' ')
            .next()
            .and_then(|count| count.parse().ok())
            .unwrap_or_else(|| panic!("a count: {body}"))
    };
    let mut counts = Vec::new();
    for app in [&first, &second] {
        let body = get_with_cookie(app, "/peek", &cookie).await.body;
        let counted = count(&body);
        assert!(
            (250..=500).contains(&counted),
            "each server counted its own 250 on top of what it loaded: {body}"
        );
        counts.push(counted);
    }
    let third = server(fixture).await;
    let body = get_with_cookie(&third, "/peek", &cookie).await.body;
    assert!(
        counts.contains(&count(&body)),
        "the last writer's value is stored: {body}, the servers hold {counts:?}"
    );
}

#[derive(SessionData)]
pub struct ProfileV1 {
    count: u64,
    name: String,
    legacy: bool,
}

fn unnamed() -> String {
    "unnamed".to_owned()
}

fn seven() -> u32 {
    7
}

/// Version 2 of the same session: `legacy` removed, `name` renamed with an alias, `added` new.
#[derive(SessionData)]
pub struct ProfileV2 {
    count: u64,
    #[session(alias = "name", default = "unnamed")]
    full_name: String,
    #[session(default = "seven")]
    added: u32,
}

pub async fn schema_evolution_keeps_stored_sessions_readable<F: Fixture>(fixture: &F) {
    async fn write_v1(session: TypedSession<ProfileV1>) {
        session.update(|profile| {
            profile.count = 5;
            profile.name = "Ada".to_owned();
            profile.legacy = true;
        });
    }
    async fn read_v2(session: TypedSession<ProfileV2>) -> String {
        session.update_count(|count| *count += 1);
        format!(
            "{} {} {}",
            session.count(),
            session.full_name(),
            session.added()
        )
    }
    let config = || config().with_cookie_name("profile");
    let v1 = SessionStore::<ProfileV1>::builder()
        .backend(fixture.backend())
        .config(config())
        .build()
        .await
        .unwrap();
    let v1 = Router::new()
        .route("/", get(write_v1))
        .layer(SessionLayer::new(v1));
    let mut browser = Browser::new(&v1);
    browser.get("/").await;

    let v2 = SessionStore::<ProfileV2>::builder()
        .backend(fixture.backend())
        .config(config())
        .build()
        .await
        .unwrap();
    let v2 = Router::new()
        .route("/", get(read_v2))
        .layer(SessionLayer::new(v2));
    let mut browser = browser.on(&v2);
    assert_eq!(
        browser.get("/").await.body,
        "6 Ada 7",
        "old key read through the alias"
    );
    let dump = fixture.dump().await;
    assert!(
        dump.contains("full_name"),
        "saved back under the new key: {dump}"
    );
}

/// A record the backend cannot return at all (damaged in storage: `damage` makes it so) gives a
/// fresh session, not a 503 on every request until it expires (or for good, if it never does):
///
/// - on a server that must load it, however often the old cookie comes back; the fresh session
///   saves and carries on like any other;
/// - when the damage reaches what a touch and a compare-and-set read (`version_damaged`: the
///   version, or the key itself), on a server that has it cached and finds the damage at its
///   touch, and on one whose next write is a compare-and-set against it: that write is not
///   acknowledged as kept, and the requests after it get a fresh session.
///
/// The damaged record is never written over, and purging goes on past it.
pub async fn a_malformed_record_gives_a_fresh_session<F: Fixture>(
    fixture: &F,
    damage: impl AsyncFn(StorageKey),
    version_damaged: bool,
) {
    let touching = config().with_touch_interval(Duration::from_millis(1));
    let cached = app(&store(fixture.backend(), touching.clone()).await);
    // Has it cached too, and will not touch it for a minute: its next write is a compare-and-set.
    let saving = server(fixture).await;
    let mut browser = Browser::new(&cached);
    assert_eq!(browser.get("/").await.body, "1");
    assert!(
        browser
            .on(&saving)
            .get("/peek")
            .await
            .body
            .starts_with("1 ")
    );
    let id = id_of(&browser);
    let key = StorageKey::for_id(id);
    damage(key.clone()).await;
    let damaged = fixture.stored(&key).await;

    let restarted_store = store(fixture.backend(), touching).await;
    let restarted = app(&restarted_store);
    for _ in 0..3 {
        let reply = browser.on(&restarted).get("/").await;
        assert_fresh(&reply, id, "after a load");
    }
    let mut fresh = browser.on(&restarted);
    assert_fresh(&fresh.get("/").await, id, "after a load");
    assert_eq!(fresh.get("/").await.body, "2", "the fresh session saves");
    let elsewhere = fresh.on(&server(fixture).await).get("/peek").await.body;
    assert!(elsewhere.starts_with("2 "), "and is stored: {elsewhere}");

    if version_damaged {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let reply = browser.on(&cached).get("/").await;
        assert_fresh(&reply, id, "after a touch");

        let mut writer = browser.on(&saving);
        let reply = writer.get("/").await;
        assert!(
            reply.status == StatusCode::SERVICE_UNAVAILABLE || reply.body == "1",
            "a write against the damaged record is not acknowledged as kept: {reply:?}"
        );
        for _ in 0..3 {
            let reply = writer.get("/").await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        }
        assert_ne!(id_of(&writer), id, "a fresh session after a save");
    }

    restarted_store
        .purge_expired()
        .await
        .expect("a purge goes on past the damaged record");
    assert_eq!(
        fixture.stored(&key).await,
        damaged,
        "the damaged record is left as it was"
    );
}

/// A 200 for a fresh session: the count starts over, under a new id.
fn assert_fresh(reply: &Reply, old: SessionId, what: &str) {
    assert_eq!(reply.status, StatusCode::OK, "{what}: {}", reply.body);
    assert_eq!(reply.body, "1", "a fresh session {what}");
    let cookie = reply.cookie("visit").expect("a new cookie");
    assert_ne!(cookie, old.to_string(), "a new id {what}");
}

/// A request still running when a parallel one drops the session (its stored copy became
/// unreadable here, by `damage`) is told its write was not kept: a 503, not a 200 over a write
/// that went nowhere.
pub async fn a_write_to_a_session_dropped_meanwhile_is_not_acknowledged<F: Fixture>(
    fixture: &F,
    damage: impl AsyncFn(StorageKey),
) {
    use std::sync::Arc;
    use tokio::sync::Notify;

    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let store = store(fixture.backend(), config()).await;
    let slow = {
        let (entered, release) = (Arc::clone(&entered), Arc::clone(&release));
        move |session: TypedSession<Visit>| async move {
            entered.notify_one();
            release.notified().await;
            session.update_count(|count| *count += 1);
        }
    };
    let app = with_route(app(&store), &store, "/slow", slow);
    let mut browser = Browser::new(&app);
    assert_eq!(browser.get("/").await.body, "1");
    let cookie = cookie_of(&browser);

    let in_flight = tokio::spawn({
        let app = app.clone();
        let cookie = cookie.clone();
        async move { get_with_cookie(&app, "/slow", &cookie).await }
    });
    entered.notified().await;
    damage(StorageKey::for_id(id_of(&browser))).await;
    let dropping = browser.get("/").await;
    assert_eq!(
        dropping.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        dropping.body
    );
    release.notify_one();
    let late = in_flight.await.unwrap();
    assert_eq!(
        late.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        late.body
    );
}

pub async fn an_undecodable_record_gives_a_fresh_session<F: Fixture>(fixture: &F) {
    let app = server(fixture).await;
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    let id = id_of(&browser);
    let key = StorageKey::for_id(id);
    let backend = fixture.backend();
    let now = now_millis();
    let stored = backend.load(&key, now).await.unwrap().unwrap();
    for garbage in ["not json", "{\"format\":99,\"fields\":{}}", "[1,2]"] {
        let record = typed_session::backend::Record {
            data: garbage.to_owned(),
            version: stored.version + 1,
            expires_at: stored.expires_at,
            index: None,
        };
        // Straight into the backend, behind the store's back, as corruption would.
        backend.save(&key, &record, None, now).await.ok();
        backend.delete(&key).await.unwrap();
        backend.save(&key, &record, None, now).await.unwrap();
        let reply = browser.on(&server(fixture).await).get("/").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, "1", "a fresh session for {garbage:?}");
        let new_id = reply.cookie("visit").expect("under a new id");
        assert_ne!(new_id, id.to_string());
        // The unreadable record is not served again (it stays until it expires: a record that
        // does not decode under this server's keys may well decode under another's).
        let again = reply.cookie("visit").map(str::to_owned);
        assert_eq!(browser.on(&server(fixture).await).get("/").await.body, "1");
        assert!(again.is_some());
    }
}

/// One stored field that no longer fits its type takes its default; the session and its other
/// fields survive.
pub async fn a_misfit_field_takes_its_default_and_the_rest_survives<F: Fixture>(fixture: &F) {
    let app = server(fixture).await;
    let mut browser = Browser::new(&app);
    browser.get("/note?text=kept").await;
    let id = id_of(&browser);
    let key = StorageKey::for_id(id);
    let backend = fixture.backend();
    let stored = backend.load(&key, now_millis()).await.unwrap().unwrap();
    let mut record: serde_json::Value = serde_json::from_str(&stored.data).unwrap();
    record["fields"]["count"] = serde_json::Value::from("many");
    let record = typed_session::backend::Record {
        data: record.to_string(),
        version: stored.version + 1,
        expires_at: stored.expires_at,
        index: None,
    };
    let outcome = backend
        .save(&key, &record, Some(stored.version), now_millis())
        .await
        .unwrap();
    assert_eq!(outcome, typed_session::backend::SaveOutcome::Saved);
    let mut elsewhere = browser.on(&server(fixture).await);
    let reply = elsewhere.get("/").await;
    assert_eq!(reply.body, "1", "count started over");
    assert!(reply.set_cookies.is_empty(), "same session, same id");
    assert!(elsewhere.get("/peek").await.body.contains("kept"));
}

pub async fn a_failing_backend_gives_503_and_writes_nothing<F: Fixture>(fixture: &F) {
    let backend = Instrumented::new(fixture.backend());
    let switch = backend.switch();
    let app = app(&store(backend, config()).await);
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    browser.get("/").await;

    // A request that must load (another server's cache is cold) while the backend is down.
    let backend = Instrumented::new(fixture.backend());
    let cold_switch = backend.switch();
    let cold = app_with(backend).await;
    cold_switch.set_down(true);
    let reply = browser.on(&cold).get("/").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.body.contains("unavailable"), "{}", reply.body);
    assert!(
        reply.set_cookies.is_empty(),
        "no new session handed out: {reply:?}"
    );
    cold_switch.set_down(false);

    // A save that fails is an error response, not a silent loss, and it means "not kept":
    // the failed increment is not stored later by the next request's save.
    switch.set_down(true);
    let reply = browser.get("/").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.body.contains("not kept"), "{}", reply.body);
    switch.set_down(false);
    assert_eq!(
        browser.get("/").await.body,
        "3",
        "the write answered 503 was dropped, not kept in memory"
    );
    browser.on(&cold).get("/").await;

    let body = browser.on(&server(fixture).await).get("/peek").await.body;
    assert!(
        body.starts_with("4 "),
        "exactly the acknowledged writes are stored: {body}"
    );
}

/// A store whose database is on a closed port (schema managed elsewhere): a new visitor's
/// write and a returning visitor's load are both 503, and no cookie is handed out.
pub async fn closed_port_gives_503<B: SessionBackend>(backend: B) {
    let store = SessionStore::<Visit>::builder()
        .backend(backend)
        .config(config())
        .create_schema(false)
        .build()
        .await
        .unwrap();
    let app = app(&store);
    let reply = Browser::new(&app).get("/").await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(reply.set_cookies.is_empty(), "{reply:?}");
    let cookie = format!("visit={}", SessionId::generate());
    let reply = get_with_cookie(&app, "/peek", &cookie).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(store.count(), 0, "nothing cached either");
}

/// Scheduled purges log a failing backend and keep going; once the backend is back, expired
/// records are deleted without anyone calling `purge_expired`.
pub async fn scheduled_purges_survive_backend_errors<F: Fixture>(fixture: &F) {
    let backend = Instrumented::new(fixture.backend());
    let switch = backend.switch();
    let config = config()
        .with_idle_timeout(Duration::from_millis(300))
        .with_touch_interval(Duration::from_millis(100))
        .with_purge_interval(Duration::from_millis(100));
    let app = app(&store(backend, config).await);
    Browser::new(&app).get("/").await;
    switch.set_down(true);
    tokio::time::sleep(Duration::from_millis(500)).await; // expired, and purges failed
    switch.set_down(false);
    let raw = fixture.backend();
    for _ in 0..50 {
        if raw.list_keys(0).await.unwrap().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no scheduled purge deleted the expired record: {}",
        fixture.dump().await
    );
}

async fn app_with<B: SessionBackend>(backend: B) -> Router {
    app(&store(backend, config()).await)
}

pub async fn long_term_sessions_survive_with_a_max_age<F: Fixture>(fixture: &F) {
    let app = server(fixture).await;
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    let reply = browser.get("/remember").await;
    let line = reply.cookie_line("visit").expect("the cookie is re-sent");
    assert!(line.contains("Max-Age=2592000"), "30 days: {line}");
    let mut restarted = browser.on(&server(fixture).await);
    assert_eq!(
        restarted.get("/peek").await.body,
        "1 None None long_term=true"
    );
}

pub async fn expiry_holds_across_restarts_and_touches_extend_it<F: Fixture>(fixture: &F) {
    let short = || {
        config()
            .with_idle_timeout(Duration::from_millis(1500))
            .with_touch_interval(Duration::from_millis(300))
    };
    let app = app(&store(fixture.backend(), short()).await);
    let mut kept_alive = Browser::new(&app);
    kept_alive.get("/").await;
    let mut abandoned = Browser::new(&app);
    abandoned.get("/").await;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(kept_alive.get("/peek").await.body.starts_with("1 "));
    }
    // 2.4 s later: only reads kept one of them alive, through touches of the backend expiry.
    let restarted = app_with_config(fixture, short()).await;
    assert_eq!(kept_alive.on(&restarted).get("/").await.body, "2");
    assert_eq!(abandoned.on(&restarted).get("/").await.body, "1", "expired");
}

async fn app_with_config<F: Fixture>(fixture: &F, config: SessionConfig) -> Router {
    app(&store(fixture.backend(), config).await)
}

pub async fn purge_deletes_expired_records<F: Fixture>(fixture: &F) {
    let config = config()
        .with_idle_timeout(Duration::from_millis(300))
        .with_touch_interval(Duration::from_millis(100));
    let store = store(fixture.backend(), config).await;
    let app = app(&store);
    for _ in 0..3 {
        Browser::new(&app).get("/").await;
    }
    assert_eq!(fixture.backend().count(now_millis()).await.unwrap(), 3);
    tokio::time::sleep(Duration::from_millis(500)).await;
    store.purge_expired().await.unwrap();
    assert_eq!(store.count(), 0, "memory purged");
    let backend = fixture.backend();
    assert_eq!(backend.count(now_millis()).await.unwrap(), 0);
    assert!(backend.list_keys(now_millis()).await.unwrap().is_empty());
}

pub async fn another_servers_logout_is_noticed_within_the_touch_interval<F: Fixture>(fixture: &F) {
    let config = || config().with_touch_interval(Duration::from_millis(200));
    let first = app_with_config(fixture, config()).await;
    let second = app_with_config(fixture, config()).await;
    let mut browser = Browser::new(&first);
    browser.get("/").await;
    let cookie = cookie_of(&browser);
    assert_eq!(
        get_with_cookie(&second, "/", &cookie).await.body,
        "2",
        "cached on both"
    );
    get_with_cookie(&second, "/destroy", &cookie).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        get_with_cookie(&first, "/", &cookie).await.body,
        "1",
        "the first server noticed"
    );
}

/// Renewal and destroy racing parallel requests that carry the old id: whatever the
/// interleaving, the old id ends up dead in memory and in the backend, and the renewed id works.
pub async fn parallel_requests_never_revive_a_renewed_or_destroyed_id<F: Fixture>(fixture: &F) {
    for ending in ["/renew", "/destroy"] {
        let app = server(fixture).await;
        let mut browser = Browser::new(&app);
        browser.get("/").await;
        let old = cookie_of(&browser);
        let old_key = StorageKey::for_id(id_of(&browser));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (app, old) = (app.clone(), old.clone());
            tasks.push(tokio::spawn(async move {
                let reply = get_with_cookie(&app, "/", &old).await;
                // A write that lands after the log-out is refused, never acknowledged.
                let refused = ending == "/destroy" && reply.status == StatusCode::CONFLICT;
                assert!(reply.status == StatusCode::OK || refused, "{}", reply.body);
            }));
        }
        let ended = browser.get(ending).await;
        assert_eq!(ended.status, StatusCode::OK);
        for task in tasks {
            task.await.unwrap();
        }
        let dump = fixture.dump().await;
        assert!(
            !dump.contains(old_key.as_str()),
            "{ending}: the old record came back: {dump}"
        );
        for app in [&app, &server(fixture).await] {
            let replay = get_with_cookie(app, "/peek", &old).await;
            assert!(
                replay.body.starts_with("0 "),
                "{ending}: the old id still works: {}",
                replay.body
            );
        }
        if ending == "/renew" {
            let mut renewed = browser.on(&server(fixture).await);
            assert_ne!(cookie_of(&renewed), old);
            let body = renewed.get("/peek").await.body;
            assert!(
                !body.starts_with("0 "),
                "the renewed session lives on: {body}"
            );
        }
    }
}

/// Requests spaced under the idle timeout keep a session alive even when none of them writes
/// and the stored expiry moves only once per touch interval: at the edge (touch interval three
/// quarters of the idle timeout, requests 0.6 of it apart), alternating between two servers and
/// ending on a third that loads it cold. With the record kept exactly `idle` past each touch it
/// expired at the second read. Each gap is measured: a machine that stalls past the idle timeout
/// ends the session rightly, and the test says so instead of blaming the store.
pub async fn requests_spaced_under_the_idle_timeout_keep_the_session<F: Fixture>(fixture: &F) {
    const IDLE: Duration = Duration::from_millis(2000);
    let edge = || {
        config()
            .with_idle_timeout(IDLE)
            .with_touch_interval(Duration::from_millis(1500))
    };
    let first = app(&store(fixture.backend(), edge()).await);
    let second = app(&store(fixture.backend(), edge()).await);
    let third = app(&store(fixture.backend(), edge()).await);
    let mut browser = Browser::new(&first);
    assert_eq!(browser.get("/").await.body, "1");
    let mut last = std::time::Instant::now();
    for round in 0..5 {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let server = [&first, &second, &first, &second, &third][round];
        let gap = last.elapsed();
        let body = browser.on(server).get("/peek").await.body;
        last = std::time::Instant::now();
        assert!(gap < IDLE, "read {round}: the machine stalled for {gap:?}");
        assert!(
            body.starts_with("1 "),
            "read {round}: still the session: {body}"
        );
    }
}

/// A server that still has a session cached after another server logged it out answers a
/// write to it with 409 and a removal cookie: the write went nowhere, and the session never
/// comes back. Once the backend's announcement of the logout has arrived (Redis, PostgreSQL),
/// the server knows and serves the request as a new visitor's instead.
pub async fn a_write_after_another_servers_logout_fails_loudly<F: Fixture>(fixture: &F) {
    let first = server(fixture).await;
    let second = server(fixture).await;
    let mut browser = Browser::new(&first);
    assert_eq!(browser.get("/").await.body, "1");
    let mut elsewhere = browser.on(&second);
    assert!(elsewhere.get("/peek").await.body.starts_with("1 "));
    let old = browser.jar.get("visit").cloned().expect("a session cookie");
    browser.get("/destroy").await;

    let reply = elsewhere.get("/").await;
    if reply.status == StatusCode::OK {
        // The backend announced the logout (Redis, PostgreSQL) and this server heard it before
        // the request: the request was a new visitor's, whose write went to a new session.
        assert_eq!(reply.body, "1", "a new session");
        let new = reply.cookie("visit").expect("a new session cookie");
        assert_ne!(new, old, "under a new id");
        let stored = fixture.backend().count(now_millis()).await.unwrap();
        assert_eq!(stored, 1, "only the new session: {}", fixture.dump().await);
        return;
    }
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
    assert!(reply.body.contains("not saved"), "{}", reply.body);
    let removal = reply.cookie_line("visit").expect("a removal cookie");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    let stored = fixture.backend().count(now_millis()).await.unwrap();
    assert_eq!(stored, 0, "never brought back: {}", fixture.dump().await);
}

/// A handler that outlives its session's stored expiry (idle timeout plus touch interval) does
/// not get a 200 over a write that found no record: 409, a removal cookie, and nothing stored.
pub async fn a_write_outliving_the_stored_expiry_fails_loudly<F: Fixture>(fixture: &F) {
    async fn slow_increment(session: TypedSession<Visit>) {
        tokio::time::sleep(Duration::from_millis(900)).await;
        session.update_count(|count| *count += 1);
    }
    let short = config()
        .with_idle_timeout(Duration::from_millis(400))
        .with_touch_interval(Duration::from_millis(200));
    let store = store(fixture.backend(), short).await;
    let app = with_route(app(&store), &store, "/slow", slow_increment);
    let mut browser = Browser::new(&app);
    assert_eq!(browser.get("/").await.body, "1");
    let reply = browser.get("/slow").await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
    assert!(browser.jar.is_empty(), "told to forget it: {reply:?}");
}

/// A memory capacity far below the sessions in use never costs an acknowledged write: an entry
/// that running requests hold is never evicted, so parallel requests of a session never load a
/// second copy whose save would overwrite the first's. 64 sessions, 4 parallel increments
/// each, 10 rounds, a capacity of 8; every increment answered 200 is stored.
pub async fn a_small_memory_capacity_never_loses_an_acknowledged_write<F: Fixture>(fixture: &F) {
    let capacity = config().with_memory_capacity(8);
    let app = app(&store(fixture.backend(), capacity).await);
    let mut cookies = Vec::new();
    for _ in 0..64 {
        let mut browser = Browser::new(&app);
        assert_eq!(browser.get("/").await.body, "1");
        cookies.push(cookie_of(&browser));
    }
    let mut acknowledged = vec![1_u64; cookies.len()];
    for _ in 0..10 {
        let mut tasks = tokio::task::JoinSet::new();
        for (session, cookie) in cookies.iter().enumerate() {
            for _ in 0..4 {
                let (app, cookie) = (app.clone(), cookie.clone());
                tasks.spawn(async move { (session, get_with_cookie(&app, "/", &cookie).await) });
            }
        }
        while let Some(done) = tasks.join_next().await {
            let (session, reply) = done.unwrap();
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            acknowledged[session] += 1;
        }
    }
    let fresh = server(fixture).await;
    for (session, cookie) in cookies.iter().enumerate() {
        let body = get_with_cookie(&fresh, "/peek", cookie).await.body;
        let stored: u64 = body.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(stored, acknowledged[session], "session {session}: {body}");
    }
}

pub fn now_millis() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Instantiates the whole suite for one backend: `e2e_suite!(async || Option<Fixture>)`.
#[macro_export]
macro_rules! e2e_suite {
    ($make:expr) => {
        $crate::e2e_suite!(@tests $make;
            counter_survives_a_store_restart,
            cached_requests_make_no_backend_round_trips,
            memory_only_fields_stay_in_memory,
            ids_are_hashed_at_rest,
            renewal_moves_the_record_and_kills_the_old_id,
            a_failed_renewal_keeps_the_session_under_its_old_id,
            a_failed_log_in_leaves_the_old_id_as_it_was,
            destroy_deletes_the_record,
            two_stores_keep_each_others_writes_to_different_fields,
            one_field_saves_of_a_large_session_keep_every_field,
            a_newer_copy_read_during_a_save_keeps_the_fields_being_saved,
            two_stores_on_one_field_last_writer_wins,
            a_save_outlasts_a_burst_of_another_servers_wins,
            schema_evolution_keeps_stored_sessions_readable,
            an_undecodable_record_gives_a_fresh_session,
            a_misfit_field_takes_its_default_and_the_rest_survives,
            a_failing_backend_gives_503_and_writes_nothing,
            long_term_sessions_survive_with_a_max_age,
            expiry_holds_across_restarts_and_touches_extend_it,
            purge_deletes_expired_records,
            another_servers_logout_is_noticed_within_the_touch_interval,
            scheduled_purges_survive_backend_errors,
            parallel_requests_never_revive_a_renewed_or_destroyed_id,
            requests_spaced_under_the_idle_timeout_keep_the_session,
            a_write_after_another_servers_logout_fails_loudly,
            a_write_outliving_the_stored_expiry_fails_loudly,
            a_small_memory_capacity_never_loses_an_acknowledged_write,
            a_users_sessions_are_listed_on_every_server,
            logging_out_other_devices_ends_them_everywhere,
            a_log_in_past_the_cap_ends_the_oldest_session,
            the_admin_api_reads_counts_destroys_and_clears,
            a_handler_saves_after_its_response_and_verifies,
        );
    };
    (@tests $make:expr; $($name:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::e2e::show_store_logs();
                let Some(fixture) = ($make)().await else { return };
                $crate::e2e::$name(&fixture).await;
                $crate::common::storage::Fixture::cleanup(fixture).await;
            }
        )*
    };
}

/// Sends the store's warnings and errors (a failed save, a backend error behind a 503) to the
/// test's captured output, so a failing test shows why the store answered as it did.
pub fn show_store_logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_ansi(false)
        .with_env_filter("typed_session=warn")
        .try_init();
}
