//! Security end to end, attacking a real `Router` the way a client (or someone holding a copy of
//! the session table) would: forged, tampered, replayed and relocated ids; key rotation; client
//! binding; header transport; encryption at rest; id renewal; storage consent; secrets in logs.
//!
//! Scenarios where storage matters are written once and run on several storages with
//! `on_storages!`: memory only, a user-written backend (`SharedMap`), SQLite, PostgreSQL, MongoDB
//! and SurrealDB (their fixtures in `common::storage`; skipped, or failed under
//! `TYPED_SESSION_REQUIRE_SERVICES=1`, when its server is down).

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Query};
use axum::http::HeaderMap;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use typed_session::backend::StorageKey;
use typed_session::{
    ClientIp, Key, SessionConfig, SessionData, SessionId, SessionLayer, SessionMode, SessionStore,
    Transport, TypedSession,
};

use crate::common::shared_map::SharedMap;
use crate::common::storage::{Fixture, Mongo, Postgres, Sqlite, Surreal};
use crate::common::{Browser, Reply, Request, StatusCode, get_with_cookie, header, send};

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

const SECRET_A: &[u8] = b"key A: thirty-two bytes or more of test-only secret material";
const SECRET_B: &[u8] = b"key B: another thirty-two bytes or more of test-only secret";
const SECRET_STRANGER: &[u8] = b"a stranger's key: 32+ bytes the app has never been given";

fn key_a() -> Key {
    Key::from_secret(SECRET_A).unwrap()
}

fn key_b() -> Key {
    Key::from_secret(SECRET_B).unwrap()
}

fn stranger_key() -> Key {
    Key::from_secret(SECRET_STRANGER).unwrap()
}

/// A store configuration that signs ids (and encrypts) with `key`.
fn signed(key: Key) -> SessionConfig {
    SessionConfig::default().with_key(key)
}

// ---------------------------------------------------------------------------------------------
// Session types and their apps
// ---------------------------------------------------------------------------------------------

/// The plain counter most attacks aim at.
#[derive(SessionData)]
struct Visit {
    count: u64,
}

/// Personal data: encrypted fields beside plain ones.
#[derive(SessionData)]
struct Profile {
    #[session(encrypt)]
    email: Option<String>,
    #[session(encrypt)]
    phone: Option<String>,
    nickname: Option<String>,
    count: u64,
}

/// A privilege whose change must give the session a new id.
#[derive(SessionData)]
struct Login {
    #[session(renew_on_change)]
    role: Option<String>,
    count: u64,
}

#[derive(serde::Deserialize)]
struct Param {
    value: String,
}

async fn visit_increment(session: TypedSession<Visit>) -> String {
    session
        .update_count(|count| {
            *count += 1;
            *count
        })
        .to_string()
}

async fn visit_peek(session: TypedSession<Visit>) -> String {
    session.count().to_string()
}

async fn visit_renew(session: TypedSession<Visit>) {
    session.renew();
}

async fn visit_destroy(session: TypedSession<Visit>) {
    session.destroy();
}

async fn visit_consent(session: TypedSession<Visit>) {
    session.set_store(true);
}

async fn visit_withdraw(session: TypedSession<Visit>) {
    session.set_store(false);
}

async fn visit_is_stored(session: TypedSession<Visit>) -> String {
    session.is_stored().to_string()
}

/// What a handler that logs its session would print, then the full id for comparison.
async fn visit_debug(session: TypedSession<Visit>) -> String {
    session.update_count(|count| *count += 1);
    format!("{session:?}\n{}", session.id())
}

fn visit_app(store: &SessionStore<Visit>) -> Router {
    Router::new()
        .route("/", get(visit_increment))
        .route("/peek", get(visit_peek))
        .route("/renew", get(visit_renew))
        .route("/destroy", get(visit_destroy))
        .route("/consent", get(visit_consent))
        .route("/withdraw", get(visit_withdraw))
        .route("/stored", get(visit_is_stored))
        .route("/debug", get(visit_debug))
        .layer(SessionLayer::new(store.clone()))
}

async fn profile_increment(session: TypedSession<Profile>) -> String {
    session
        .update_count(|count| {
            *count += 1;
            *count
        })
        .to_string()
}

async fn profile_set_email(session: TypedSession<Profile>, Query(param): Query<Param>) {
    session.set_email(Some(param.value));
}

async fn profile_set_phone(session: TypedSession<Profile>, Query(param): Query<Param>) {
    session.set_phone(Some(param.value));
}

async fn profile_set_nickname(session: TypedSession<Profile>, Query(param): Query<Param>) {
    session.set_nickname(Some(param.value));
}

async fn profile_renew(session: TypedSession<Profile>) {
    session.renew();
}

async fn profile_peek(session: TypedSession<Profile>) -> String {
    format!(
        "{} {:?} {:?} {:?}",
        session.count(),
        session.email(),
        session.phone(),
        session.nickname()
    )
}

fn profile_app(store: &SessionStore<Profile>) -> Router {
    Router::new()
        .route("/", get(profile_increment))
        .route("/email", get(profile_set_email))
        .route("/phone", get(profile_set_phone))
        .route("/nickname", get(profile_set_nickname))
        .route("/renew", get(profile_renew))
        .route("/peek", get(profile_peek))
        .layer(SessionLayer::new(store.clone()))
}

async fn login_increment(session: TypedSession<Login>) -> String {
    session
        .update_count(|count| {
            *count += 1;
            *count
        })
        .to_string()
}

async fn login_set_role(session: TypedSession<Login>, Query(param): Query<Param>) {
    session.set_role(Some(param.value));
}

async fn login_peek(session: TypedSession<Login>) -> String {
    format!("{} {:?}", session.count(), session.role())
}

fn login_app(store: &SessionStore<Login>) -> Router {
    Router::new()
        .route("/", get(login_increment))
        .route("/role", get(login_set_role))
        .route("/peek", get(login_peek))
        .layer(SessionLayer::new(store.clone()))
}

// ---------------------------------------------------------------------------------------------
// Requests and assertions
// ---------------------------------------------------------------------------------------------

/// A GET as a hand-made client sends it: an optional `Cookie` header (`name=value`) and any
/// other headers.
fn request(
    path: &str,
    cookie: Option<&str>,
    headers: &[(&str, &str)],
) -> axum::http::request::Builder {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
}

async fn get_with(
    app: &Router,
    path: &str,
    cookie: Option<&str>,
    headers: &[(&str, &str)],
) -> Reply {
    send(
        app,
        request(path, cookie, headers).body(Body::empty()).unwrap(),
    )
    .await
}

/// A response with all its headers, for the header transport.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }

    fn has_set_cookie(&self) -> bool {
        self.headers.contains_key(header::SET_COOKIE)
    }
}

async fn exchange(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// The id a wire value (`<id>[~s][.<signature>]`) carries.
fn id_of(value: &str) -> SessionId {
    value[..SessionId::TEXT_LEN].parse().unwrap()
}

/// `<32 lowercase hex>[~s].<43 base64url>`: a signed id.
#[track_caller]
fn assert_signed(value: &str) {
    let (payload, signature) = value
        .split_once('.')
        .unwrap_or_else(|| panic!("no signature in {value:?}"));
    let id = payload.strip_suffix("~s").unwrap_or(payload);
    assert!(
        id.len() == 32
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "not a session id: {value:?}"
    );
    assert_eq!(signature.len(), 43, "{value:?}");
    assert!(
        signature
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "signature not base64url: {value:?}"
    );
}

/// The request was served by a brand-new session: the counter starts over, and a cookie with
/// another id than the presented one is handed out.
#[track_caller]
fn assert_fresh(reply: &Reply, cookie: &str, presented: &str) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.body, "1",
        "the presented value was accepted: {presented}"
    );
    let issued = reply
        .cookie(cookie)
        .unwrap_or_else(|| panic!("a fresh session gets a cookie: {:?}", reply.set_cookies));
    assert_ne!(
        &issued[..SessionId::TEXT_LEN],
        presented.get(..SessionId::TEXT_LEN).unwrap_or(presented),
        "the fresh session must not take the presented id"
    );
}

#[track_caller]
fn assert_no_set_cookie(reply: &Reply) {
    assert!(reply.set_cookies.is_empty(), "{:?}", reply.set_cookies);
}

/// `value` with its character at `index` replaced by another character of the same alphabet.
fn flip(value: &str, index: usize) -> String {
    let mut bytes = value.as_bytes().to_vec();
    bytes[index] = match bytes[index] {
        b'a' => b'b',
        b'0' => b'1',
        b'A' => b'B',
        _ => b'a',
    };
    String::from_utf8(bytes).unwrap()
}

/// The key id a sealed value starts with (`base64url(key id ‖ nonce ‖ ciphertext ‖ tag)`).
fn sealing_key_id(sealed: &str) -> [u8; 4] {
    let bytes = URL_SAFE_NO_PAD.decode(sealed).unwrap();
    assert!(
        bytes.len() >= 4 + 12 + 16,
        "too short to be sealed: {sealed}"
    );
    bytes[..4].try_into().unwrap()
}

fn parse_record(data: &str) -> Value {
    serde_json::from_str(data).unwrap_or_else(|error| panic!("{error}: {data}"))
}

async fn memory_store<T: SessionData>(config: SessionConfig) -> SessionStore<T> {
    SessionStore::<T>::builder()
        .config(config)
        .build()
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Storages: one scenario, several places where sessions rest
// ---------------------------------------------------------------------------------------------

/// Where a scenario's sessions rest, with raw access to what is stored (as an attacker with a
/// copy of, or write access to, the table would have): memory only, or one backend's
/// [`Fixture`].
#[derive(Clone)]
enum Storage {
    Memory,
    Map(SharedMap),
    Sqlite(Sqlite),
    Postgres(Postgres),
    Mongo(Mongo),
    Surreal(Surreal),
}

/// `$fixture => $body` for the backend's fixture, or `$memory` in memory-only mode.
macro_rules! with_fixture {
    ($storage:expr, $memory:expr, $fixture:ident => $body:expr) => {
        match $storage {
            Storage::Memory => $memory,
            Storage::Map($fixture) => $body,
            Storage::Sqlite($fixture) => $body,
            Storage::Postgres($fixture) => $body,
            Storage::Mongo($fixture) => $body,
            Storage::Surreal($fixture) => $body,
        }
    };
}

impl Storage {
    async fn memory() -> Option<Self> {
        Some(Self::Memory)
    }

    async fn map() -> Option<Self> {
        Some(Self::Map(SharedMap::default()))
    }

    async fn sqlite() -> Option<Self> {
        Sqlite::new().await.map(Self::Sqlite)
    }

    async fn postgres() -> Option<Self> {
        Postgres::new().await.map(Self::Postgres)
    }

    async fn mongodb() -> Option<Self> {
        Mongo::new().await.map(Self::Mongo)
    }

    async fn surrealdb() -> Option<Self> {
        Surreal::new().await.map(Self::Surreal)
    }

    /// A store ("a server") on this storage; each call is another server sharing it.
    async fn store<T: SessionData>(&self, config: SessionConfig) -> SessionStore<T> {
        let builder = SessionStore::<T>::builder().config(config);
        with_fixture!(self, builder.build().await, fixture => {
            builder.backend(fixture.backend()).build().await
        })
        .unwrap()
    }

    /// Every stored record, as (storage key, data), read straight from the storage.
    async fn records(&self) -> Vec<(String, String)> {
        with_fixture!(self, Vec::new(), fixture => fixture.records().await)
    }

    /// Everything stored, as one text to search for plaintext.
    async fn dump(&self) -> String {
        self.records()
            .await
            .into_iter()
            .map(|(key, data)| format!("{key} {data}\n"))
            .collect()
    }

    /// The stored data of session `id`.
    async fn record(&self, id: SessionId) -> Option<String> {
        let key = StorageKey::for_id(id);
        self.records()
            .await
            .into_iter()
            .find_map(|(stored, data)| (stored == key.as_str()).then_some(data))
    }

    /// Overwrites the stored data of session `id`, behind the store's back.
    async fn tamper(&self, id: SessionId, data: &str) {
        let key = StorageKey::for_id(id);
        let changed = with_fixture!(
            self,
            panic!("nothing is stored in memory-only mode"),
            fixture => fixture.set_data(&key, data).await
        );
        assert_eq!(changed, 1, "no stored record to tamper with");
    }

    /// Removes what the scenario stored.
    async fn cleanup(self) {
        with_fixture!(self, (), fixture => fixture.cleanup().await);
    }
}

/// Runs `scenario` on `storage` and cleans up afterwards, also when the scenario fails.
async fn run<F, Fut>(storage: Storage, scenario: F)
where
    F: FnOnce(Storage) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let outcome = tokio::spawn(scenario(storage.clone())).await;
    storage.cleanup().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// One `#[tokio::test]` per storage for `scenario`, named `scenario::storage`.
macro_rules! on_storages {
    ($scenario:ident: $($storage:ident),+ $(,)?) => {
        mod $scenario {
            $(
                #[tokio::test]
                async fn $storage() {
                    if let Some(storage) = super::Storage::$storage().await {
                        super::run(storage, super::$scenario).await;
                    }
                }
            )+
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Signed ids
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn signed_cookie_round_trips_and_carries_a_signature() {
    let app = visit_app(&memory_store(signed(key_a())).await);
    let mut browser = Browser::new(&app);
    let first = browser.get("/").await;
    assert_eq!(first.body, "1");
    let value = first.cookie("visit").unwrap();
    assert_signed(value);
    assert!(
        !value.contains('~'),
        "no consent marker outside OptIn: {value}"
    );
    let line = first.cookie_line("visit").unwrap();
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(line.contains(attribute), "{attribute} missing: {line}");
    }
    for expected in ["2", "3"] {
        let reply = browser.get("/").await;
        assert_eq!(reply.body, expected);
        assert_no_set_cookie(&reply);
    }
}

#[tokio::test]
async fn a_tampered_signature_gives_a_fresh_session_and_leaves_the_real_one_alone() {
    let app = visit_app(&memory_store(signed(key_a())).await);
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    let value = browser.jar["visit"].clone();
    let dot = value.find('.').unwrap();
    for index in [dot + 1, dot + 20, value.len() - 2] {
        let tampered = flip(&value, index);
        let reply = get_with_cookie(&app, "/", &format!("visit={tampered}")).await;
        assert_fresh(&reply, "visit", &tampered);
    }
    assert_eq!(
        browser.get("/").await.body,
        "2",
        "the real session is untouched"
    );
}

/// The last of the 43 characters carries 4 bits of the MAC and 2 unused bits: spelling those
/// differently must not give a second valid value (signatures are canonical).
#[tokio::test]
async fn a_signature_respelled_in_its_unused_bits_is_rejected() {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let app = visit_app(&memory_store(signed(key_a())).await);
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    let value = browser.jar["visit"].clone();
    let last = *value.as_bytes().last().unwrap();
    let index = ALPHABET.iter().position(|&c| c == last).unwrap();
    assert_eq!(
        index & 0b11,
        0,
        "a canonical signature leaves the unused bits zero"
    );
    let mut respelled = value.clone().into_bytes();
    *respelled.last_mut().unwrap() = ALPHABET[index | 0b01];
    let respelled = String::from_utf8(respelled).unwrap();
    let reply = get_with_cookie(&app, "/", &format!("visit={respelled}")).await;
    assert_fresh(&reply, "visit", &respelled);
}

#[tokio::test]
async fn a_signature_moved_onto_another_id_is_rejected() {
    let app = visit_app(&memory_store(signed(key_a())).await);
    let mut victim = Browser::new(&app);
    victim.get("/").await;
    victim.get("/").await;
    let mut attacker = Browser::new(&app);
    attacker.get("/").await;
    // The victim's id (learnt somehow) under the attacker's valid signature.
    let victim_id = &victim.jar["visit"][..32];
    let attacker_signature = &attacker.jar["visit"][32..];
    let forged = format!("{victim_id}{attacker_signature}");
    let reply = get_with_cookie(&app, "/", &format!("visit={forged}")).await;
    assert_fresh(&reply, "visit", &forged);
    assert_eq!(victim.get("/").await.body, "3");
}

#[tokio::test]
async fn an_unsigned_bare_id_is_rejected() {
    let app = visit_app(&memory_store(signed(key_a())).await);
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    let value = browser.jar["visit"].clone();
    let bare = &value[..32];
    let reply = get_with_cookie(&app, "/", &format!("visit={bare}")).await;
    assert_fresh(&reply, "visit", bare);
    // A dot with nothing after it is no signature either.
    let empty_signature = format!("{bare}.");
    let reply = get_with_cookie(&app, "/", &format!("visit={empty_signature}")).await;
    assert_fresh(&reply, "visit", &empty_signature);
    assert_eq!(browser.get("/").await.body, "2");
}

#[tokio::test]
async fn a_value_signed_by_an_unknown_key_is_rejected() {
    // The same id space and cookie name, but another key: a value minted by another
    // deployment (or an attacker's own server) is not ours.
    let ours = visit_app(&memory_store(signed(key_a())).await);
    let theirs = visit_app(&memory_store(signed(stranger_key())).await);
    let mut browser = Browser::new(&ours);
    browser.get("/").await;
    let mut elsewhere = Browser::new(&theirs);
    elsewhere.get("/").await;
    // Their own value, and our live id under their signature: both refused.
    let ours_id = &browser.jar["visit"][..32];
    let their_signature = &elsewhere.jar["visit"][32..];
    for forged in [
        elsewhere.jar["visit"].clone(),
        format!("{ours_id}{their_signature}"),
    ] {
        let reply = get_with_cookie(&ours, "/", &format!("visit={forged}")).await;
        assert_fresh(&reply, "visit", &forged);
    }
}

#[tokio::test]
async fn garbage_values_give_a_fresh_session_and_never_an_error() {
    let app = visit_app(&memory_store(signed(key_a())).await);
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    let id = browser.jar["visit"][..32].to_owned();
    let long = "a".repeat(8192);
    let garbage = [
        String::new(),
        ".".to_owned(),
        "~s".to_owned(),
        format!("{id}~s"),
        format!("{id}.{}", "!".repeat(43)),
        format!("{id}.{}", "A".repeat(44)),
        format!("{id}.{}.{}", "A".repeat(43), "A".repeat(43)),
        format!("{}.{}", id.to_uppercase(), &browser.jar["visit"][33..]),
        format!("{id}{id}"),
        long,
    ];
    for value in garbage {
        let reply = get_with_cookie(&app, "/", &format!("visit={value}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{value}");
        assert_eq!(reply.body, "1", "{value}");
    }
    assert_eq!(browser.get("/").await.body, "2");
}

/// A `Cookie` header stuffed with forged signed values costs a bounded number of signature
/// checks: the real cookie is found behind a few forgeries (cookies of other paths can share
/// its name) but not behind thousands, which are never all verified.
#[tokio::test]
async fn a_header_stuffed_with_forged_ids_is_examined_only_so_far() {
    let config = signed(key_a()).with_user_agent_binding(true);
    let app = visit_app(&memory_store(config).await);
    let as_client = [("user-agent", FIREFOX)];
    let first = get_with(&app, "/", None, &as_client).await;
    let value = first.cookie("visit").unwrap().to_owned();
    let forged = |count: usize| -> String {
        (0..count)
            .map(|i| {
                format!(
                    "visit={}.{}; ",
                    SessionId::generate(),
                    "A".repeat(42) + &(i % 10).to_string()
                )
            })
            .collect()
    };

    // Cookie tossing from a sibling subdomain plants values in front of the real one.
    let behind_planted = format!("{}visit={value}", forged(64));
    let reply = get_with(&app, "/", Some(&behind_planted), &as_client).await;
    assert_eq!(reply.body, "2", "found behind 64 forged values");

    let behind_many = format!("{}visit={value}", forged(5000));
    let reply = get_with(&app, "/", Some(&behind_many), &as_client).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_fresh(&reply, "visit", &value);

    let cookie = format!("visit={value}");
    assert_eq!(
        get_with(&app, "/", Some(&cookie), &as_client).await.body,
        "3",
        "the real session is untouched"
    );
}

/// With a key, a session this server must load (another server created it) is found behind 64
/// planted values too: each forged value fails its signature before it could cost a round trip.
async fn a_stored_session_is_found_behind_64_forged_values(storage: Storage) {
    let config = || signed(key_a()).with_user_agent_binding(true);
    let as_client = [("user-agent", FIREFOX)];
    let first = visit_app(&storage.store(config()).await);
    let value = get_with(&first, "/", None, &as_client)
        .await
        .cookie("visit")
        .unwrap()
        .to_owned();
    let forged: String = (0..64)
        .map(|i| {
            format!(
                "visit={}.{}{}; ",
                SessionId::generate(),
                "A".repeat(42),
                i % 10
            )
        })
        .collect();
    let cold = visit_app(&storage.store(config()).await);
    let cookie = format!("{forged}visit={value}");
    let reply = get_with(&cold, "/", Some(&cookie), &as_client).await;
    assert_eq!(reply.body, "2", "loaded from behind 64 forged values");
}

on_storages!(a_stored_session_is_found_behind_64_forged_values: sqlite, postgres);

/// Without a key planted values are well-formed ids nobody holds: the ids are looked up in
/// memory before anything else, so the real session is found behind 64 of them too.
#[tokio::test]
async fn an_unsigned_session_is_found_behind_64_planted_ids() {
    let app = visit_app(&memory_store(SessionConfig::default().with_secure(false)).await);
    let first = get_with(&app, "/", None, &[]).await;
    let value = first.cookie("visit").unwrap().to_owned();
    let planted: String = (0..64)
        .map(|_| format!("visit={}; ", SessionId::generate()))
        .collect();
    let cookie = format!("{planted}visit={value}");
    let reply = get_with(&app, "/", Some(&cookie), &[]).await;
    assert_eq!(reply.body, "2", "found behind 64 planted ids");
    assert_no_set_cookie(&reply);
}

// ---------------------------------------------------------------------------------------------
// Key rotation
// ---------------------------------------------------------------------------------------------

/// Cookies issued under key A stay valid once B is current and A previous, and are re-signed
/// with B on their next response; a server that no longer knows A rejects them.
async fn key_rotation_keeps_sessions_and_resigns(storage: Storage) {
    let before = visit_app(&storage.store(signed(key_a())).await);
    let mut browser = Browser::new(&before);
    browser.get("/").await;
    browser.get("/").await;
    let old_value = browser.jar["visit"].clone();

    let rotated = visit_app(
        &storage
            .store(signed(key_b()).with_previous_keys([key_a()]))
            .await,
    );
    let mut browser = browser.on(&rotated);
    // Even a request that only reads re-signs.
    let reply = browser.get("/peek").await;
    assert_eq!(reply.body, "2", "the session survived the rotation");
    let new_value = reply
        .cookie("visit")
        .expect("a value signed with a previous key is re-signed")
        .to_owned();
    assert_signed(&new_value);
    assert_eq!(
        id_of(&new_value),
        id_of(&old_value),
        "same session, new signature"
    );
    assert_ne!(new_value, old_value);
    let reply = browser.get("/").await;
    assert_eq!(reply.body, "3");
    assert_no_set_cookie(&reply);

    let only_b = visit_app(&storage.store(signed(key_b())).await);
    let reply = get_with_cookie(&only_b, "/", &format!("visit={old_value}")).await;
    assert_fresh(&reply, "visit", &old_value);
    let reply = get_with_cookie(&only_b, "/", &format!("visit={new_value}")).await;
    assert_eq!(
        reply.body, "4",
        "the re-signed value verifies under B alone"
    );
}

on_storages!(key_rotation_keeps_sessions_and_resigns: map, sqlite, postgres, mongodb, surrealdb);

// ---------------------------------------------------------------------------------------------
// A signed value is valid only under the name it was issued for
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_signed_value_moved_to_another_cookie_name_is_rejected() {
    // Two apps on one backend and one key, with different cookie names (say the shop and the
    // admin area); a third server with the shop's name shows the value itself is fine.
    let storage = SharedMap::default();
    let store = |name: &'static str| {
        let storage = storage.clone();
        async move {
            SessionStore::<Visit>::builder()
                .backend(storage)
                .config(signed(key_a()).with_cookie_name(name))
                .build()
                .await
                .unwrap()
        }
    };
    let shop = visit_app(&store("shop").await);
    let admin = visit_app(&store("admin").await);
    let other_shop_server = visit_app(&store("shop").await);
    let mut browser = Browser::new(&shop);
    browser.get("/").await;
    browser.get("/").await;
    let value = browser.jar["shop"].clone();

    let reply = get_with_cookie(&admin, "/", &format!("admin={value}")).await;
    assert_fresh(&reply, "admin", &value);
    let reply = get_with_cookie(&other_shop_server, "/", &format!("shop={value}")).await;
    assert_eq!(reply.body, "3", "under its own name the value is valid");
}

#[tokio::test]
async fn a_cookie_value_is_not_accepted_as_a_header_value_and_vice_versa() {
    let config = signed(key_a()).with_transport(Transport::CookieAndHeader);
    let app = visit_app(&memory_store(config).await);
    let first = exchange(&app, request("/", None, &[]).body(Body::empty()).unwrap()).await;
    assert_eq!(first.body, "1");
    let header_value = first.header("x-session-id").unwrap().to_owned();
    let set_cookie = first.header("set-cookie").unwrap();
    let cookie_value = set_cookie["visit=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        id_of(&header_value),
        id_of(&cookie_value),
        "one session, two transports"
    );
    assert_ne!(
        header_value, cookie_value,
        "each signed for its own transport"
    );

    let cross = |cookie: Option<String>, header: Option<&str>| {
        let headers: Vec<(&str, &str)> = header.map(|v| ("x-session-id", v)).into_iter().collect();
        request("/", cookie.as_deref(), &headers)
            .body(Body::empty())
            .unwrap()
    };
    let reply = exchange(&app, cross(None, Some(&cookie_value))).await;
    assert_eq!(reply.body, "1", "a cookie value in the header was accepted");
    assert_ne!(
        id_of(reply.header("x-session-id").unwrap()),
        id_of(&cookie_value)
    );
    let reply = exchange(&app, cross(Some(format!("visit={header_value}")), None)).await;
    assert_eq!(reply.body, "1", "a header value in the cookie was accepted");

    let reply = exchange(&app, cross(None, Some(&header_value))).await;
    assert_eq!(reply.body, "2");
    let reply = exchange(&app, cross(Some(format!("visit={cookie_value}")), None)).await;
    assert_eq!(reply.body, "3");
}

// ---------------------------------------------------------------------------------------------
// Client binding
// ---------------------------------------------------------------------------------------------

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const CURL: &str = "curl/8.5.0";

#[tokio::test]
async fn user_agent_binding_rejects_a_cookie_replayed_from_another_browser() {
    let config = signed(key_a()).with_user_agent_binding(true);
    let app = visit_app(&memory_store(config).await);
    let first = get_with(&app, "/", None, &[("user-agent", FIREFOX)]).await;
    let value = first.cookie("visit").unwrap().to_owned();
    let cookie = format!("visit={value}");
    let as_victim = [("user-agent", FIREFOX)];
    assert_eq!(
        get_with(&app, "/", Some(&cookie), &as_victim).await.body,
        "2"
    );

    let reply = get_with(&app, "/", Some(&cookie), &[("user-agent", CURL)]).await;
    assert_fresh(&reply, "visit", &value);
    let reply = get_with(&app, "/", Some(&cookie), &[]).await;
    assert_fresh(&reply, "visit", &value);
    assert_eq!(
        get_with(&app, "/", Some(&cookie), &as_victim).await.body,
        "3",
        "the victim's session is untouched"
    );
}

#[tokio::test]
async fn ip_binding_behind_a_proxy_rejects_another_client_address() {
    // One trusted proxy appends the client's address to `X-Forwarded-For`.
    let config = signed(key_a())
        .with_ip_binding(true)
        .with_client_ip(ClientIp::XForwardedFor(1));
    let app = visit_app(&memory_store(config).await);
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    let first = get_with(&app, "/", None, &from("203.0.113.7")).await;
    let value = first.cookie("visit").unwrap().to_owned();
    let cookie = format!("visit={value}");
    assert_eq!(
        get_with(&app, "/", Some(&cookie), &from("203.0.113.7"))
            .await
            .body,
        "2"
    );

    let reply = get_with(&app, "/", Some(&cookie), &from("198.51.100.9")).await;
    assert_fresh(&reply, "visit", &value);
    // The attacker writes the victim's address into the header itself; the proxy appends the
    // attacker's real address, which is the one that counts.
    let spoofed = [("x-forwarded-for", "203.0.113.7, 198.51.100.9")];
    let reply = get_with(&app, "/", Some(&cookie), &spoofed).await;
    assert_fresh(&reply, "visit", &value);
    assert_eq!(
        get_with(&app, "/", Some(&cookie), &from("203.0.113.7"))
            .await
            .body,
        "3"
    );
}

/// The most common proxy set-up (nginx's `$proxy_add_x_forwarded_for`, cloud load balancers)
/// appends the client's address to `X-Forwarded-For` and passes every other request header
/// through untouched. A client that adds its own `Forwarded` header must not get to choose its
/// address with it.
#[tokio::test]
async fn ip_binding_behind_an_x_forwarded_for_proxy_ignores_a_client_written_forwarded_header() {
    let config = signed(key_a())
        .with_ip_binding(true)
        .with_client_ip(ClientIp::XForwardedFor(1));
    let app = visit_app(&memory_store(config).await);
    let first = get_with(&app, "/", None, &[("x-forwarded-for", "203.0.113.7")]).await;
    let value = first.cookie("visit").unwrap().to_owned();
    let cookie = format!("visit={value}");

    // The attacker (198.51.100.9, as the proxy reports) replays the stolen cookie and writes
    // the victim's address into a header the proxy does not manage.
    let attack = [
        ("forwarded", "for=203.0.113.7"),
        ("x-forwarded-for", "198.51.100.9"),
    ];
    let reply = get_with(&app, "/", Some(&cookie), &attack).await;
    assert_fresh(&reply, "visit", &value);
}

/// A proxy that only sets `X-Real-IP` (`proxy_set_header X-Real-IP $remote_addr;`, the header
/// `ClientIp::XRealIp` names) passes a client's own `X-Forwarded-For` through:
/// that header must not override the address the proxy reported.
#[tokio::test]
async fn ip_binding_behind_an_x_real_ip_proxy_ignores_a_client_written_x_forwarded_for() {
    let config = signed(key_a())
        .with_ip_binding(true)
        .with_client_ip(ClientIp::XRealIp);
    let app = visit_app(&memory_store(config).await);
    let first = get_with(&app, "/", None, &[("x-real-ip", "203.0.113.7")]).await;
    let value = first.cookie("visit").unwrap().to_owned();
    let cookie = format!("visit={value}");
    let reply = get_with(&app, "/", Some(&cookie), &[("x-real-ip", "203.0.113.7")]).await;
    assert_eq!(reply.body, "2", "the victim keeps the session");

    let attack = [
        ("x-forwarded-for", "203.0.113.7"),
        ("x-real-ip", "198.51.100.9"),
    ];
    let reply = get_with(&app, "/", Some(&cookie), &attack).await;
    assert_fresh(&reply, "visit", &value);
}

/// IP binding that cannot find the client's address refuses instead of binding to "no
/// address" (which let a cookie work from anywhere): an app served without `ConnectInfo`, or a
/// proxy header that is missing or lists fewer addresses than the proxies configured. A 500
/// that names the fix, no cookie; a visitor who needs no session is not refused.
#[tokio::test]
async fn ip_binding_refuses_requests_whose_address_it_cannot_tell() {
    let peer = visit_app(&memory_store(signed(key_a()).with_ip_binding(true)).await);
    let refused = |reply: &Reply| {
        assert_eq!(
            reply.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{}",
            reply.body
        );
        assert!(reply.body.contains("binding"), "{}", reply.body);
        assert_no_set_cookie(reply);
    };
    // Served by plain `axum::serve(listener, app)`: no peer address in the request.
    refused(&get_with(&peer, "/", None, &[]).await);
    let reading = get_with(&peer, "/peek", None, &[]).await;
    assert_eq!(
        reading.status,
        StatusCode::OK,
        "nothing to bind: {}",
        reading.body
    );
    let with_peer = request("/", None, &[])
        .extension(ConnectInfo(
            "192.0.2.10:50000".parse::<SocketAddr>().unwrap(),
        ))
        .body(Body::empty())
        .unwrap();
    let value = send(&peer, with_peer)
        .await
        .cookie("visit")
        .unwrap()
        .to_owned();
    refused(&get_with(&peer, "/peek", Some(&format!("visit={value}")), &[]).await);

    for (source, headers) in [
        (ClientIp::XForwardedFor(1), vec![]),
        (
            ClientIp::XForwardedFor(2),
            vec![("x-forwarded-for", "203.0.113.7")],
        ),
        (
            ClientIp::Forwarded(1),
            vec![("x-forwarded-for", "203.0.113.7")],
        ),
        (ClientIp::XRealIp, vec![]),
    ] {
        let config = signed(key_a()).with_ip_binding(true).with_client_ip(source);
        let app = visit_app(&memory_store(config).await);
        refused(&get_with(&app, "/", None, &headers).await);
    }
}

#[tokio::test]
async fn ip_binding_on_the_socket_peer_rejects_another_client_address() {
    let config = signed(key_a()).with_ip_binding(true);
    let app = visit_app(&memory_store(config).await);
    let from = |peer: &str, cookie: Option<&str>, headers: &[(&str, &str)]| {
        let peer: SocketAddr = peer.parse().unwrap();
        request("/", cookie, headers)
            .extension(ConnectInfo(peer))
            .body(Body::empty())
            .unwrap()
    };
    let first = send(&app, from("192.0.2.10:50000", None, &[])).await;
    let value = first.cookie("visit").unwrap().to_owned();
    let cookie = format!("visit={value}");
    let reply = send(&app, from("192.0.2.10:50001", Some(&cookie), &[])).await;
    assert_eq!(
        reply.body, "2",
        "another port of the same address is the same client"
    );

    let reply = send(&app, from("192.0.2.99:50000", Some(&cookie), &[])).await;
    assert_fresh(&reply, "visit", &value);
    // Without trusted proxies, forwarding headers are the client's own words: ignored.
    let spoofed = [
        ("x-forwarded-for", "192.0.2.10"),
        ("x-real-ip", "192.0.2.10"),
    ];
    let reply = send(&app, from("192.0.2.99:50000", Some(&cookie), &spoofed)).await;
    assert_fresh(&reply, "visit", &value);
    let reply = send(&app, from("[2001:db8::1]:443", Some(&cookie), &[])).await;
    assert_fresh(&reply, "visit", &value);
    let reply = send(&app, from("192.0.2.10:50002", Some(&cookie), &[])).await;
    assert_eq!(reply.body, "3");
}

// ---------------------------------------------------------------------------------------------
// Header transport
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn header_transport_round_trips_without_any_cookie() {
    let config = signed(key_a()).with_transport(Transport::Header);
    let store = memory_store::<Visit>(config).await;
    assert_eq!(store.cookie_name(), "x-session-id");
    let app = visit_app(&store);
    let call = |path: &str, value: Option<&str>| {
        let headers: Vec<(&str, &str)> = value.map(|v| ("x-session-id", v)).into_iter().collect();
        let request = request(path, None, &headers).body(Body::empty()).unwrap();
        let app = app.clone();
        async move {
            let answer = exchange(&app, request).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
            assert!(
                !answer.has_set_cookie(),
                "a cookie in header mode: {:?}",
                answer.headers
            );
            answer
        }
    };

    let first = call("/", None).await;
    assert_eq!(first.body, "1");
    let value = first.header("x-session-id").unwrap().to_owned();
    assert_signed(&value);
    let second = call("/", Some(&value)).await;
    assert_eq!(second.body, "2");
    assert_eq!(
        second.header("x-session-id"),
        None,
        "unchanged id, nothing to send"
    );

    // Tampered and cookie-borne values mean nothing here.
    let tampered = flip(&value, 40);
    assert_eq!(call("/", Some(&tampered)).await.body, "1");
    let as_cookie = request("/", Some(&format!("visit={value}")), &[])
        .body(Body::empty())
        .unwrap();
    assert_eq!(exchange(&app, as_cookie).await.body, "1");

    let renewed = call("/renew", Some(&value)).await;
    let new_value = renewed.header("x-session-id").unwrap().to_owned();
    assert_signed(&new_value);
    assert_ne!(id_of(&new_value), id_of(&value));
    let stale = call("/", Some(&value)).await;
    assert_eq!(stale.body, "1", "the id before renewal is dead");
    assert_ne!(id_of(stale.header("x-session-id").unwrap()), id_of(&value));
    assert_eq!(call("/", Some(&new_value)).await.body, "3");

    let destroyed = call("/destroy", Some(&new_value)).await;
    assert_eq!(
        destroyed.header("x-session-id"),
        Some(""),
        "destroy answers an empty header"
    );
    assert_eq!(call("/", Some(&new_value)).await.body, "1");
}

#[tokio::test]
async fn cookie_and_header_serve_a_browser_and_an_api_client_on_one_app() {
    let config = signed(key_a()).with_transport(Transport::CookieAndHeader);
    let app = visit_app(&memory_store(config).await);
    let mut browser = Browser::new(&app);
    let api = |value: Option<&str>| {
        let headers: Vec<(&str, &str)> = value.map(|v| ("x-session-id", v)).into_iter().collect();
        let request = request("/", None, &headers).body(Body::empty()).unwrap();
        let app = app.clone();
        async move { exchange(&app, request).await }
    };

    assert_eq!(browser.get("/").await.body, "1");
    let first = api(None).await;
    assert_eq!(first.body, "1");
    let token = first.header("x-session-id").unwrap().to_owned();
    assert_signed(&token);
    assert_eq!(browser.get("/").await.body, "2");
    assert_eq!(api(Some(&token)).await.body, "2");
    assert_eq!(api(Some(&token)).await.body, "3");
    assert_eq!(browser.get("/").await.body, "3", "two separate sessions");
    assert_ne!(id_of(&token), id_of(&browser.jar["visit"]));

    // Destroy tells both kinds of client to forget the id.
    let headers = [("x-session-id", token.as_str())];
    let destroyed = exchange(
        &app,
        request("/destroy", None, &headers)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(destroyed.header("x-session-id"), Some(""));
    let removal = destroyed.header("set-cookie").unwrap();
    assert!(removal.contains("Max-Age=0"), "{removal}");
    assert_eq!(api(Some(&token)).await.body, "1");
    assert_eq!(
        browser.get("/").await.body,
        "4",
        "the browser's session is another"
    );
}

// ---------------------------------------------------------------------------------------------
// Encryption at rest
// ---------------------------------------------------------------------------------------------

const EMAIL: &str = "ada.lovelace.1815@analytical-engine.example";
const PHONE: &str = "plus44-20-7946-0958";
const NICKNAME: &str = "enchantress-of-numbers";

/// `#[session(encrypt)]` fields rest as ciphertext under the current key; plain fields stay
/// plain (and readable by the app after a restart).
async fn encrypted_fields_are_not_stored_in_plaintext(storage: Storage) {
    let app = profile_app(&storage.store(signed(key_a())).await);
    let mut browser = Browser::new(&app);
    browser.get(&format!("/email?value={EMAIL}")).await;
    browser.get(&format!("/phone?value={PHONE}")).await;
    browser.get(&format!("/nickname?value={NICKNAME}")).await;

    let dump = storage.dump().await;
    assert!(!dump.contains(EMAIL), "plaintext e-mail at rest: {dump}");
    assert!(!dump.contains(PHONE), "plaintext phone at rest: {dump}");
    assert!(
        dump.contains(NICKNAME),
        "the plain field is stored as is: {dump}"
    );
    let record = parse_record(
        &storage
            .record(id_of(&browser.jar["profile"]))
            .await
            .unwrap(),
    );
    let email = record["fields"]["email"].as_str().expect("a sealed string");
    assert_eq!(sealing_key_id(email), key_a().id().to_be_bytes());
    assert_ne!(
        record["fields"]["email"], record["fields"]["phone"],
        "each value sealed on its own"
    );

    let restarted = profile_app(&storage.store(signed(key_a())).await);
    assert_eq!(
        browser.on(&restarted).get("/peek").await.body,
        format!("0 Some({EMAIL:?}) Some({PHONE:?}) Some({NICKNAME:?})")
    );
}

on_storages!(encrypted_fields_are_not_stored_in_plaintext: map, sqlite, postgres, mongodb, surrealdb);

/// `with_encrypt_all`: no field value, and no field name, is readable at rest.
async fn encrypt_all_stores_no_field_in_plaintext(storage: Storage) {
    let config = || signed(key_a()).with_encrypt_all(true);
    let app = profile_app(&storage.store(config()).await);
    let mut browser = Browser::new(&app);
    browser.get(&format!("/email?value={EMAIL}")).await;
    browser.get(&format!("/nickname?value={NICKNAME}")).await;

    let dump = storage.dump().await;
    for plain in [EMAIL, NICKNAME, "nickname", "email", "count"] {
        assert!(!dump.contains(plain), "{plain} readable at rest: {dump}");
    }
    let record = parse_record(
        &storage
            .record(id_of(&browser.jar["profile"]))
            .await
            .unwrap(),
    );
    assert!(record.get("fields").is_none(), "{record}");
    let sealed = record["sealed"].as_str().expect("a sealed record");
    assert_eq!(sealing_key_id(sealed), key_a().id().to_be_bytes());

    let restarted = profile_app(&storage.store(config()).await);
    assert_eq!(
        browser.on(&restarted).get("/peek").await.body,
        format!("0 Some({EMAIL:?}) None Some({NICKNAME:?})")
    );
}

on_storages!(encrypt_all_stores_no_field_in_plaintext: map, sqlite, postgres, mongodb, surrealdb);

/// Ciphertexts are bound to the session they were sealed for, so renewal must re-seal them for
/// the new id: the renewed session reads on a server that never saw it, and the old record
/// is gone.
async fn encrypted_fields_survive_renewal(storage: Storage) {
    let config = || signed(key_a());
    let app = profile_app(&storage.store(config()).await);
    let mut browser = Browser::new(&app);
    browser.get(&format!("/email?value={EMAIL}")).await;
    let before = browser.jar["profile"].clone();
    assert!(browser.get("/renew").await.cookie("profile").is_some());
    let after = browser.jar["profile"].clone();
    assert_ne!(id_of(&after), id_of(&before));
    assert_eq!(
        storage.record(id_of(&before)).await,
        None,
        "old record left"
    );
    let record = storage.record(id_of(&after)).await.unwrap();
    assert!(!record.contains(EMAIL), "{record}");

    let restarted = profile_app(&storage.store(config()).await);
    let mut elsewhere = browser.on(&restarted);
    assert_eq!(
        elsewhere.get("/peek").await.body,
        format!("0 Some({EMAIL:?}) None None")
    );
    let reply = elsewhere.get("/").await;
    assert_eq!(reply.body, "1", "the renewed session, not a fresh one");
    assert_no_set_cookie(&reply);
}

on_storages!(encrypted_fields_survive_renewal: map, sqlite, postgres, mongodb, surrealdb);

/// Someone with write access to the table copies Alice's encrypted e-mail into Bob's record.
/// The ciphertext is bound to Alice's session, so Bob's record no longer decrypts: Bob gets a
/// fresh session (new id), never Alice's e-mail, and nothing fails.
async fn a_ciphertext_copied_into_another_session_gives_a_fresh_session(storage: Storage) {
    let app = profile_app(&storage.store(signed(key_a())).await);
    let mut alice = Browser::new(&app);
    alice.get(&format!("/email?value={EMAIL}")).await;
    let mut bob = Browser::new(&app);
    bob.get("/email?value=bob@example.com").await;
    bob.get("/").await;
    let (alice_id, bob_id) = (id_of(&alice.jar["profile"]), id_of(&bob.jar["profile"]));

    let alice_record = parse_record(&storage.record(alice_id).await.unwrap());
    let mut bob_record = parse_record(&storage.record(bob_id).await.unwrap());
    bob_record["fields"]["email"] = alice_record["fields"]["email"].clone();
    storage.tamper(bob_id, &bob_record.to_string()).await;

    // A server that has not cached Bob's session reads the tampered record.
    let restarted = profile_app(&storage.store(signed(key_a())).await);
    let old_bob_value = bob.jar["profile"].clone();
    let mut bob = bob.on(&restarted);
    let reply = bob.get("/peek").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.body, "0 None None None",
        "Bob must not see Alice's data"
    );
    let reply = bob.get("/").await;
    assert_fresh(&reply, "profile", &old_bob_value);
    assert_eq!(
        alice.on(&restarted).get("/peek").await.body,
        format!("0 Some({EMAIL:?}) None None"),
        "Alice's own record is intact"
    );
}

on_storages!(a_ciphertext_copied_into_another_session_gives_a_fresh_session: map, sqlite, postgres, mongodb, surrealdb);

/// The same with a whole sealed record (`with_encrypt_all`).
async fn a_sealed_record_copied_into_another_session_gives_a_fresh_session(storage: Storage) {
    let config = || signed(key_a()).with_encrypt_all(true);
    let app = profile_app(&storage.store(config()).await);
    let mut alice = Browser::new(&app);
    alice.get(&format!("/email?value={EMAIL}")).await;
    let mut bob = Browser::new(&app);
    bob.get("/").await;
    let (alice_id, bob_id) = (id_of(&alice.jar["profile"]), id_of(&bob.jar["profile"]));

    // The whole record, envelope and all.
    let alice_data = storage.record(alice_id).await.unwrap();
    storage.tamper(bob_id, &alice_data).await;

    let restarted = profile_app(&storage.store(config()).await);
    let old_bob_value = bob.jar["profile"].clone();
    let mut bob = bob.on(&restarted);
    let reply = bob.get("/peek").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.body, "0 None None None",
        "Bob must not see Alice's data"
    );
    assert_fresh(&bob.get("/").await, "profile", &old_bob_value);
}

on_storages!(a_sealed_record_copied_into_another_session_gives_a_fresh_session: map, sqlite);

/// A ciphertext is bound to its field too: the e-mail moved into the phone field of the same
/// record does not decrypt there.
async fn a_ciphertext_moved_to_another_field_gives_a_fresh_session(storage: Storage) {
    let app = profile_app(&storage.store(signed(key_a())).await);
    let mut browser = Browser::new(&app);
    browser.get(&format!("/email?value={EMAIL}")).await;
    browser.get(&format!("/phone?value={PHONE}")).await;
    let id = id_of(&browser.jar["profile"]);
    let mut record = parse_record(&storage.record(id).await.unwrap());
    record["fields"]["phone"] = record["fields"]["email"].clone();
    storage.tamper(id, &record.to_string()).await;

    let restarted = profile_app(&storage.store(signed(key_a())).await);
    let old_value = browser.jar["profile"].clone();
    let mut browser = browser.on(&restarted);
    assert_eq!(browser.get("/peek").await.body, "0 None None None");
    assert_fresh(&browser.get("/").await, "profile", &old_value);
}

on_storages!(a_ciphertext_moved_to_another_field_gives_a_fresh_session: map, sqlite);

/// Someone with write access plants a plaintext value where a ciphertext belongs: it is never
/// read as the field's value.
async fn a_plaintext_planted_in_an_encrypted_field_is_not_believed(storage: Storage) {
    let app = profile_app(&storage.store(signed(key_a())).await);
    let mut browser = Browser::new(&app);
    browser.get(&format!("/email?value={EMAIL}")).await;
    browser.get(&format!("/nickname?value={NICKNAME}")).await;
    let id = id_of(&browser.jar["profile"]);
    let mut record = parse_record(&storage.record(id).await.unwrap());
    record["fields"]["email"] = Value::from("mallory@evil.example");
    storage.tamper(id, &record.to_string()).await;

    let restarted = profile_app(&storage.store(signed(key_a())).await);
    let reply = browser.on(&restarted).get("/peek").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(!reply.body.contains("mallory"), "{}", reply.body);
}

on_storages!(a_plaintext_planted_in_an_encrypted_field_is_not_believed: map, sqlite);

/// Records sealed under key A read after rotating to B (A previous), and the next write
/// re-seals them under B, after which a server with B alone reads them.
async fn rotation_reads_old_records_and_reencrypts_on_write(storage: Storage, encrypt_all: bool) {
    let config = |key: Key, previous: Vec<Key>| {
        signed(key)
            .with_previous_keys(previous)
            .with_encrypt_all(encrypt_all)
    };
    // The key id of the sealed part of session `id`'s record.
    let sealed_under = |storage: Storage, id: SessionId| async move {
        let record = parse_record(&storage.record(id).await.unwrap());
        let sealed = if encrypt_all {
            &record["sealed"]
        } else {
            &record["fields"]["email"]
        };
        sealing_key_id(sealed.as_str().expect("a sealed value"))
    };

    let before = profile_app(&storage.store(config(key_a(), vec![])).await);
    let mut browser = Browser::new(&before);
    browser.get(&format!("/email?value={EMAIL}")).await;
    let id = id_of(&browser.jar["profile"]);
    assert_eq!(
        sealed_under(storage.clone(), id).await,
        key_a().id().to_be_bytes()
    );

    let rotated = profile_app(&storage.store(config(key_b(), vec![key_a()])).await);
    let mut browser = browser.on(&rotated);
    assert_eq!(
        browser.get("/peek").await.body,
        format!("0 Some({EMAIL:?}) None None"),
        "the old record reads after rotation"
    );
    assert_eq!(
        sealed_under(storage.clone(), id).await,
        key_a().id().to_be_bytes(),
        "a read writes nothing"
    );
    browser.get(&format!("/nickname?value={NICKNAME}")).await;
    assert_eq!(
        sealed_under(storage.clone(), id).await,
        key_b().id().to_be_bytes(),
        "the write re-sealed the record under the new key"
    );
    assert!(!storage.dump().await.contains(EMAIL));

    let only_b = profile_app(&storage.store(config(key_b(), vec![])).await);
    assert_eq!(
        browser.on(&only_b).get("/peek").await.body,
        format!("0 Some({EMAIL:?}) None Some({NICKNAME:?})")
    );
}

async fn rotation_reencrypts_fields(storage: Storage) {
    rotation_reads_old_records_and_reencrypts_on_write(storage, false).await;
}

async fn rotation_reencrypts_whole_records(storage: Storage) {
    rotation_reads_old_records_and_reencrypts_on_write(storage, true).await;
}

on_storages!(rotation_reencrypts_fields: map, sqlite, postgres, mongodb, surrealdb);
on_storages!(rotation_reencrypts_whole_records: map, sqlite);

#[tokio::test]
async fn an_encrypted_field_without_a_key_fails_the_build_naming_the_field() {
    let error = SessionStore::<Profile>::builder()
        .build()
        .await
        .expect_err("a store that would have to store `email` in plaintext");
    let message = error.to_string();
    assert!(message.contains("email"), "{message}");
    assert!(message.contains("phone"), "{message}");
    assert!(message.contains("Profile"), "{message}");
    // The same with a backend: nothing is ever written in plaintext.
    let error = SessionStore::<Profile>::builder()
        .backend(SharedMap::default())
        .build()
        .await
        .expect_err("no key, with a backend");
    assert!(error.to_string().contains("email"), "{error}");
}

#[tokio::test]
async fn settings_that_need_a_key_fail_the_build_without_one() {
    for (setting, config) in [
        (
            "encrypt_all",
            SessionConfig::default().with_encrypt_all(true),
        ),
        ("ip binding", SessionConfig::default().with_ip_binding(true)),
        (
            "user-agent binding",
            SessionConfig::default().with_user_agent_binding(true),
        ),
        (
            "previous keys",
            SessionConfig::default().with_previous_keys([key_a()]),
        ),
    ] {
        let result = SessionStore::<Visit>::builder()
            .config(config)
            .build()
            .await;
        assert!(result.is_err(), "{setting} without a key was accepted");
    }
}

// ---------------------------------------------------------------------------------------------
// Renewal
// ---------------------------------------------------------------------------------------------

/// A change of a `renew_on_change` field renews the id (the old one dies); setting the same
/// value, or writing another field, does not.
async fn renew_on_change_renews_only_on_a_change(storage: Storage) {
    let app = login_app(&storage.store(signed(key_a())).await);
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    let before = browser.jar["login"].clone();

    let reply = browser.get("/role?value=admin").await;
    let after = reply.cookie("login").expect("a change renews").to_owned();
    assert_ne!(id_of(&after), id_of(&before));
    let reply = get_with_cookie(&app, "/", &format!("login={before}")).await;
    assert_fresh(&reply, "login", &before);
    assert_eq!(browser.get("/peek").await.body, "1 Some(\"admin\")");

    assert_no_set_cookie(&browser.get("/role?value=admin").await);
    let reply = browser.get("/").await;
    assert_eq!(reply.body, "2");
    assert_no_set_cookie(&reply);
    assert_eq!(
        browser.jar["login"], after,
        "same value, other field: same id"
    );

    let reply = browser.get("/role?value=user").await;
    assert!(
        reply.cookie("login").is_some(),
        "another change renews again"
    );
    assert_eq!(browser.get("/peek").await.body, "2 Some(\"user\")");
    let reply = get_with_cookie(&app, "/", &format!("login={after}")).await;
    assert_fresh(&reply, "login", &after);
}

on_storages!(renew_on_change_renews_only_on_a_change: memory, sqlite);

/// A validly signed value of a renewed or destroyed session is dead: on this server and, with
/// a backend, on a server that never saw it.
async fn old_ids_after_renewal_and_destroy_give_a_fresh_session(storage: Storage) {
    let app = visit_app(&storage.store(signed(key_a())).await);
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    browser.get("/").await;
    let before_renewal = browser.jar["visit"].clone();
    let reply = browser.get("/renew").await;
    assert!(reply.cookie("visit").is_some());
    let renewed = browser.jar["visit"].clone();
    assert_ne!(id_of(&renewed), id_of(&before_renewal));

    let reply = get_with_cookie(&app, "/", &format!("visit={before_renewal}")).await;
    assert_fresh(&reply, "visit", &before_renewal);
    assert_eq!(browser.get("/").await.body, "3");

    let reply = browser.get("/destroy").await;
    let removal = reply.cookie_line("visit").unwrap();
    assert!(removal.contains("Max-Age=0"), "{removal}");
    let reply = get_with_cookie(&app, "/", &format!("visit={renewed}")).await;
    assert_fresh(&reply, "visit", &renewed);

    if !matches!(storage, Storage::Memory) {
        let other_server = visit_app(&storage.store(signed(key_a())).await);
        for dead in [&before_renewal, &renewed] {
            let reply = get_with_cookie(&other_server, "/", &format!("visit={dead}")).await;
            assert_fresh(&reply, "visit", dead);
        }
        let stored = storage.dump().await;
        for dead in [&before_renewal, &renewed] {
            let key = StorageKey::for_id(id_of(dead));
            assert!(
                !stored.contains(key.as_str()),
                "a dead record is still stored"
            );
        }
    }
}

on_storages!(old_ids_after_renewal_and_destroy_give_a_fresh_session: memory, sqlite, postgres, mongodb, surrealdb);

// ---------------------------------------------------------------------------------------------
// Storage consent (SessionMode::OptIn)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn opt_in_stores_nothing_before_consent_and_the_marker_cannot_be_forged() {
    let backend = SharedMap::default();
    let config = || signed(key_a()).with_mode(SessionMode::OptIn);
    let store = SessionStore::<Visit>::builder()
        .backend(backend.clone())
        .config(config())
        .build()
        .await
        .unwrap();
    let app = visit_app(&store);
    let mut browser = Browser::new(&app);
    assert_eq!(browser.get("/").await.body, "1");
    assert_eq!(
        browser.get("/").await.body,
        "2",
        "the session works in memory"
    );
    assert_eq!(browser.get("/stored").await.body, "false");
    browser.get("/renew").await;
    assert_eq!(browser.get("/").await.body, "3", "renewed in memory");
    assert!(backend.map().is_empty(), "stored before consent");
    let unconsented = browser.jar["visit"].clone();
    assert_signed(&unconsented);
    assert!(!unconsented.contains('~'), "{unconsented}");

    // The client writes the consent marker itself.
    let (id, signature) = unconsented.split_once('.').unwrap();
    let forged = format!("{id}~s.{signature}");
    let reply = get_with_cookie(&app, "/", &format!("visit={forged}")).await;
    assert_fresh(&reply, "visit", &forged);
    assert!(
        backend.map().is_empty(),
        "a forged marker got a session stored"
    );

    let reply = browser.get("/consent").await;
    let consented = reply.cookie("visit").expect("consent re-issues the value");
    assert_signed(consented);
    assert_eq!(id_of(consented), id_of(&unconsented), "the same session");
    assert!(consented.contains("~s."), "{consented}");
    assert_eq!(browser.get("/").await.body, "4");
    assert_eq!(browser.get("/stored").await.body, "true");
    {
        let map = backend.map();
        assert_eq!(map.len(), 1);
        let record = &map[&StorageKey::for_id(id_of(id))];
        assert_eq!(parse_record(&record.data)["fields"]["count"], 4);
    }
    // Stripping the marker off a consented value breaks its signature as well.
    let consented = browser.jar["visit"].clone();
    let stripped = consented.replacen("~s", "", 1);
    let reply = get_with_cookie(&app, "/", &format!("visit={stripped}")).await;
    assert_fresh(&reply, "visit", &stripped);

    // Consent reaches other servers through the stored copy (read only here: this server's
    // cache would not see another server's write before its next touch).
    let other_server = SessionStore::<Visit>::builder()
        .backend(backend.clone())
        .config(config())
        .build()
        .await
        .unwrap();
    let mut elsewhere = browser.on(&visit_app(&other_server));
    assert_eq!(elsewhere.get("/peek").await.body, "4");
    assert_eq!(elsewhere.get("/stored").await.body, "true");

    // Withdrawn consent deletes the stored copy; the session lives on in memory.
    browser.get("/withdraw").await;
    assert!(
        backend.map().is_empty(),
        "withdrawal left the record stored"
    );
    assert!(
        !browser.jar["visit"].contains('~'),
        "{}",
        browser.jar["visit"]
    );
    assert_eq!(browser.get("/").await.body, "5");
    assert!(backend.map().is_empty());
}

/// Without a key OptIn still decides storage by the server's own flag, so a client writing
/// `~s` into its cookie stores nothing. What it gives up is the signature: the marker is plain
/// text the client can add or drop (harmless, since the server ignores it) and the id itself is
/// unsigned, protected only by being random and held by the store.
#[tokio::test]
async fn opt_in_without_a_key_ignores_a_client_written_marker() {
    let backend = SharedMap::default();
    let store = SessionStore::<Visit>::builder()
        .backend(backend.clone())
        .config(SessionConfig::default().with_mode(SessionMode::OptIn))
        .build()
        .await
        .unwrap();
    let app = visit_app(&store);
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    let id = browser.jar["visit"].clone();
    assert_eq!(id.len(), 32, "unsigned: a bare id");
    let reply = get_with_cookie(&app, "/", &format!("visit={id}~s")).await;
    assert_eq!(reply.body, "2", "the marker names the same session");
    let reply = get_with_cookie(&app, "/stored", &format!("visit={id}~s")).await;
    assert_eq!(reply.body, "false", "the client cannot grant consent");
    assert!(backend.map().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Secrets in logs
// ---------------------------------------------------------------------------------------------

/// Every spelling of `secret` a careless `Debug` might print.
fn spellings(secret: &[u8]) -> Vec<String> {
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let bytes = format!("{:?}", &secret[..8]);
    vec![
        String::from_utf8_lossy(secret).into_owned(),
        String::from_utf8_lossy(&secret[..12]).into_owned(),
        hex.clone(),
        hex[..24].to_owned(),
        hex.to_uppercase()[..24].to_owned(),
        STANDARD.encode(secret)[..24].to_owned(),
        URL_SAFE_NO_PAD.encode(secret)[..24].to_owned(),
        bytes[1..bytes.len() - 1].to_owned(),
    ]
}

/// Key material of any origin shows up as a long run of hex/base64 characters or a list of
/// byte values; `Debug` output with neither holds no key.
#[track_caller]
fn assert_no_key_material(debug: &str) {
    let longest_run = debug
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '+'))
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(longest_run < 32, "a key-sized token in {debug}");
    let numbers_in_a_row = debug
        .split(|c: char| !(c.is_ascii_digit() || c == ',' || c == ' '))
        .map(|run| run.split(',').filter(|n| !n.trim().is_empty()).count())
        .max()
        .unwrap_or(0);
    assert!(numbers_in_a_row < 8, "a byte list in {debug}");
}

#[tokio::test]
async fn debug_output_of_keys_configs_and_stores_holds_no_key_material() {
    let canary: &[u8] = b"canary-secret-Zq7Kx9Vb2Nm4Lp8Rt6Wy3Hd5Jf1Gs0-end";
    let key = Key::from_secret(canary).unwrap();
    let config = SessionConfig::default()
        .with_key(key.clone())
        .with_previous_keys([Key::from_secret(&canary[1..]).unwrap(), Key::generate()]);
    let store = SessionStore::<Visit>::builder()
        .config(config.clone())
        .build()
        .await
        .unwrap();
    let builder = SessionStore::<Visit>::builder().config(config.clone());
    let layer = SessionLayer::new(store.clone());
    let debugs = [
        format!("{key:?}"),
        format!("{key:#?}"),
        format!("{config:?}"),
        format!("{config:#?}"),
        format!("{store:?}"),
        format!("{:?}", store.config()),
        format!("{builder:?}"),
        format!("{layer:?}"),
    ];
    for debug in &debugs {
        for spelling in spellings(canary) {
            assert!(!debug.contains(&spelling), "{spelling:?} in {debug}");
        }
        assert_no_key_material(debug);
    }
    assert!(
        debugs[0].contains(&format!("{:08x}", key.id())),
        "the key id identifies the key: {}",
        debugs[0]
    );
}

#[tokio::test]
async fn debug_output_of_a_session_holds_no_usable_id() {
    let app = visit_app(&memory_store(signed(key_a())).await);
    let reply = Browser::new(&app).get("/debug").await;
    let (debug, id) = reply.body.split_once('\n').unwrap();
    assert_eq!(id.len(), 32);
    assert!(!debug.contains(id), "the full id in {debug}");
    assert!(!debug.contains(&id[..16]), "half the id in {debug}");
}
