//! What the security suite's topics share: keys, the session types and their apps, requests
//! and assertions, and [`Storage`], the places where a scenario's sessions rest.

use std::future::Future;

use axum::Router;
use axum::body::Body;
use axum::extract::Query;
use axum::http::HeaderMap;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use typed_session::backend::StorageKey;
use typed_session::{
    Key, SessionConfig, SessionData, SessionId, SessionLayer, SessionStore, TypedSession,
};

use crate::common::shared_map::SharedMap;
use crate::common::storage::{Fixture, Mongo, Postgres, Sqlite, Surreal};
use crate::common::{Reply, Request, StatusCode, header, send};

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

const SECRET_A: &[u8] = b"key A: thirty-two bytes or more of test-only secret material";
const SECRET_B: &[u8] = b"key B: another thirty-two bytes or more of test-only secret";
const SECRET_STRANGER: &[u8] = b"a stranger's key: 32+ bytes the app has never been given";

pub(super) fn key_a() -> Key {
    Key::from_secret(SECRET_A).unwrap()
}

pub(super) fn key_b() -> Key {
    Key::from_secret(SECRET_B).unwrap()
}

pub(super) fn stranger_key() -> Key {
    Key::from_secret(SECRET_STRANGER).unwrap()
}

/// A store configuration that signs ids (and encrypts) with `key`.
pub(super) fn signed(key: Key) -> SessionConfig {
    SessionConfig::default().with_key(key)
}

// ---------------------------------------------------------------------------------------------
// Session types and their apps
// ---------------------------------------------------------------------------------------------

/// The plain counter most attacks aim at.
#[derive(SessionData)]
pub(super) struct Visit {
    count: u64,
}

/// Personal data: encrypted fields beside plain ones.
#[derive(SessionData)]
pub(super) struct Profile {
    #[session(encrypt)]
    email: Option<String>,
    #[session(encrypt)]
    phone: Option<String>,
    nickname: Option<String>,
    count: u64,
}

/// A privilege whose change must give the session a new id.
#[derive(SessionData)]
pub(super) struct Login {
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

async fn visit_has_store_consent(session: TypedSession<Visit>) -> String {
    session.has_store_consent().to_string()
}

/// What a handler that logs its session would print, then the full id for comparison.
async fn visit_debug(session: TypedSession<Visit>) -> String {
    session.update_count(|count| *count += 1);
    format!("{session:?}\n{}", session.id())
}

pub(super) fn visit_app(store: &SessionStore<Visit>) -> Router {
    Router::new()
        .route("/", get(visit_increment))
        .route("/peek", get(visit_peek))
        .route("/renew", get(visit_renew))
        .route("/destroy", get(visit_destroy))
        .route("/consent", get(visit_consent))
        .route("/withdraw", get(visit_withdraw))
        .route("/has-consent", get(visit_has_store_consent))
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

pub(super) fn profile_app(store: &SessionStore<Profile>) -> Router {
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

pub(super) fn login_app(store: &SessionStore<Login>) -> Router {
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
pub(super) fn request(
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

pub(super) async fn get_with(
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
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: String,
}

impl Answer {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }

    pub(super) fn has_set_cookie(&self) -> bool {
        self.headers.contains_key(header::SET_COOKIE)
    }
}

pub(super) async fn exchange(app: &Router, request: Request<Body>) -> Answer {
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
pub(super) fn id_of(value: &str) -> SessionId {
    value[..SessionId::TEXT_LEN].parse().unwrap()
}

/// `<32 lowercase hex>[~s].<43 base64url>`: a signed id.
#[track_caller]
pub(super) fn assert_signed(value: &str) {
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
pub(super) fn assert_fresh(reply: &Reply, cookie: &str, presented: &str) {
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
pub(super) fn assert_no_set_cookie(reply: &Reply) {
    assert!(reply.set_cookies.is_empty(), "{:?}", reply.set_cookies);
}

/// `value` with its character at `index` replaced by another character of the same alphabet.
pub(super) fn flip(value: &str, index: usize) -> String {
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
pub(super) fn sealing_key_id(sealed: &str) -> [u8; 4] {
    let bytes = URL_SAFE_NO_PAD.decode(sealed).unwrap();
    assert!(
        bytes.len() >= 4 + 12 + 16,
        "too short to be sealed: {sealed}"
    );
    bytes[..4].try_into().unwrap()
}

pub(super) fn parse_record(data: &str) -> Value {
    serde_json::from_str(data).unwrap_or_else(|error| panic!("{error}: {data}"))
}

pub(super) async fn memory_store<T: SessionData>(config: SessionConfig) -> SessionStore<T> {
    SessionStore::<T>::builder()
        .config(config)
        .build()
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Storages: one scenario, several places where sessions rest
// ---------------------------------------------------------------------------------------------

/// Where a scenario's sessions rest, with raw access to what is stored (as an attacker with a
/// copy of, or write access to, the table would have): memory only, or one backend's
/// [`Fixture`].
#[derive(Clone)]
pub(super) enum Storage {
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
    pub(super) async fn memory() -> Option<Self> {
        Some(Self::Memory)
    }

    pub(super) async fn map() -> Option<Self> {
        Some(Self::Map(SharedMap::default()))
    }

    pub(super) async fn sqlite() -> Option<Self> {
        Sqlite::new().await.map(Self::Sqlite)
    }

    pub(super) async fn postgres() -> Option<Self> {
        Postgres::new().await.map(Self::Postgres)
    }

    pub(super) async fn mongodb() -> Option<Self> {
        Mongo::new().await.map(Self::Mongo)
    }

    pub(super) async fn surrealdb() -> Option<Self> {
        Surreal::new().await.map(Self::Surreal)
    }

    /// A store ("a server") on this storage; each call is another server sharing it.
    pub(super) async fn store<T: SessionData>(&self, config: SessionConfig) -> SessionStore<T> {
        let builder = SessionStore::<T>::builder().config(config);
        with_fixture!(self, builder.build().await, fixture => {
            builder.backend(fixture.backend()).build().await
        })
        .unwrap()
    }

    /// Every stored record, as (storage key, data), read straight from the storage.
    pub(super) async fn records(&self) -> Vec<(String, String)> {
        with_fixture!(self, Vec::new(), fixture => fixture.records().await)
    }

    /// Everything stored, as one text to search for plaintext.
    pub(super) async fn dump(&self) -> String {
        self.records()
            .await
            .into_iter()
            .map(|(key, data)| format!("{key} {data}\n"))
            .collect()
    }

    /// The stored data of session `id`.
    pub(super) async fn record(&self, id: SessionId) -> Option<String> {
        let key = StorageKey::for_id(id);
        self.records()
            .await
            .into_iter()
            .find_map(|(stored, data)| (stored == key.as_str()).then_some(data))
    }

    /// Overwrites the stored data of session `id`, behind the store's back.
    pub(super) async fn tamper(&self, id: SessionId, data: &str) {
        let key = StorageKey::for_id(id);
        let changed = with_fixture!(
            self,
            panic!("nothing is stored in memory-only mode"),
            fixture => fixture.set_data(&key, data).await
        );
        assert_eq!(changed, 1, "no stored record to tamper with");
    }

    /// Removes what the scenario stored.
    pub(super) async fn cleanup(self) {
        with_fixture!(self, (), fixture => fixture.cleanup().await);
    }
}

/// Runs `scenario` on `storage` and cleans up afterwards, also when the scenario fails.
pub(super) async fn run<F, Fut>(storage: Storage, scenario: F)
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
// Clients and personal data
// ---------------------------------------------------------------------------------------------

pub(super) const FIREFOX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
pub(super) const CURL: &str = "curl/8.5.0";

pub(super) const EMAIL: &str = "ada.lovelace.1815@analytical-engine.example";
pub(super) const PHONE: &str = "plus44-20-7946-0958";
pub(super) const NICKNAME: &str = "enchantress-of-numbers";
