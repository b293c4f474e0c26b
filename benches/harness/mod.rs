//! The contenders and workloads, shared by the criterion bench and the per-request driver.
//!
//! Every contender serves the same two handlers on a `Router`, driven in-process as a tower
//! service (no network): `/count` reads a `u64`, adds 1, stores it and returns it; `/read` only
//! reads it. A contender is checked before it is measured: a new client must get 1 then 2 with
//! its own cookie, so a misconfigured contender cannot post a flattering number.
#![allow(dead_code, unreachable_pub)]

use std::fmt;

use axum::Router;
use axum::body::Body;
use axum::body::Bytes;
use axum::http::{HeaderValue, Request, Response, header};
use axum::routing::get;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Who is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contender {
    /// No session layer at all: the ceiling.
    RawAxum,
    /// A yardstick: the least a cookie session layer can do, written plainly (`floor.rs`).
    MinimalLayer,
    TypedMemory,
    TypedSigned,
    /// SQLite behind the memory cache.
    TypedSqlite,
    /// The local PostgreSQL (over TCP only: `benches/over_tcp.sh`).
    TypedPostgres,
    /// The local Redis (over TCP only).
    TypedRedis,
    TowerSessions,
    TowerSessionsSigned,
    /// tower-sessions on the local PostgreSQL (`tower-sessions-sqlx-store`; over TCP only).
    TowerSessionsPostgres,
    /// tower-sessions on the local Redis (`tower-sessions-redis-store`; over TCP only).
    TowerSessionsRedis,
    AxumSession,
    AxumSessionSigned,
    /// A yardstick: the least a layer writing Redis on every request does (`redis_floor.rs`;
    /// over TCP only).
    RedisFloor,
    /// The backend contenders with 10 KiB more in every session (a field the requests never
    /// change): what a one-field write to a large session costs against a small one. Stored
    /// with `with_partial_writes(true)`, so that a one-field change does not write the 10 KiB
    /// again.
    TypedSqlitePadded,
    TypedPostgresPadded,
    TypedRedisPadded,
}

impl Contender {
    pub const ALL: [Self; 17] = [
        Self::RawAxum,
        Self::MinimalLayer,
        Self::TypedMemory,
        Self::TypedSigned,
        Self::TypedSqlite,
        Self::TypedPostgres,
        Self::TypedRedis,
        Self::TowerSessions,
        Self::TowerSessionsSigned,
        Self::TowerSessionsPostgres,
        Self::TowerSessionsRedis,
        Self::AxumSession,
        Self::AxumSessionSigned,
        Self::RedisFloor,
        Self::TypedSqlitePadded,
        Self::TypedPostgresPadded,
        Self::TypedRedisPadded,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::RawAxum => "raw-axum",
            Self::MinimalLayer => "minimal-layer",
            Self::TypedMemory => "typed-session",
            Self::TypedSigned => "typed-session-signed",
            Self::TypedSqlite => "typed-session-sqlite",
            Self::TypedPostgres => "typed-session-postgres",
            Self::TypedRedis => "typed-session-redis",
            Self::TowerSessionsPostgres => "tower-sessions-postgres",
            Self::TowerSessionsRedis => "tower-sessions-redis",
            Self::TowerSessions => "tower-sessions",
            Self::TowerSessionsSigned => "tower-sessions-signed",
            Self::AxumSession => "axum_session",
            Self::AxumSessionSigned => "axum_session-signed",
            Self::RedisFloor => "redis-floor",
            Self::TypedSqlitePadded => "typed-session-sqlite-10k",
            Self::TypedPostgresPadded => "typed-session-postgres-10k",
            Self::TypedRedisPadded => "typed-session-redis-10k",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|contender| contender.name() == name)
    }

    /// The contender's router as `axum::serve` runs it: `with_state(())` turns each route into
    /// its service once (a `Router` called directly would do so on every request).
    pub async fn router(self) -> Router {
        let router = match self {
            Self::RawAxum => raw::router(),
            Self::MinimalLayer => floor::router(),
            Self::TypedMemory => typed::router(typed::Variant::Memory).await,
            Self::TypedSigned => typed::router(typed::Variant::Signed).await,
            Self::TypedSqlite => typed::router(typed::Variant::Sqlite).await,
            Self::TypedPostgres => typed::router(typed::Variant::Postgres).await,
            Self::TypedRedis => typed::router(typed::Variant::Redis).await,
            Self::TypedSqlitePadded => typed::padded_router(typed::Variant::Sqlite).await,
            Self::TypedPostgresPadded => typed::padded_router(typed::Variant::Postgres).await,
            Self::TypedRedisPadded => typed::padded_router(typed::Variant::Redis).await,
            Self::TowerSessionsPostgres => tower_sessions_peer::postgres_router().await,
            Self::TowerSessionsRedis => tower_sessions_peer::redis_router().await,
            Self::TowerSessions => tower_sessions_peer::router(false),
            Self::TowerSessionsSigned => tower_sessions_peer::router(true),
            Self::AxumSession => axum_session_peer::router(false).await,
            Self::AxumSessionSigned => axum_session_peer::router(true).await,
            Self::RedisFloor => redis_floor::router().await,
        };
        router.with_state(())
    }
}

impl fmt::Display for Contender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What each request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// A pool of existing sessions; each request increments a random one.
    Hot,
    /// No cookie: every request creates a session.
    Fresh,
    /// A pool of existing sessions; each request only reads a random one.
    ReadOnly,
}

impl Workload {
    pub const ALL: [Self; 3] = [Self::Hot, Self::Fresh, Self::ReadOnly];

    pub fn name(self) -> &'static str {
        match self {
            Self::Hot => "hot",
            Self::Fresh => "fresh",
            Self::ReadOnly => "read-only",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|workload| workload.name() == name)
    }
}

/// Gives the process a second thread (parked for good), once, before any contender runs.
///
/// A server process always has several (runtime workers, the blocking pool); while a process
/// has only one, glibc takes shortcuts that no server gets: `malloc` and `free` without atomic
/// operations, syscalls without cancellation handling. A bench process with one thread would
/// hand those to every contender that starts no thread of its own, and not to one that does
/// (typed-session's purge schedule): measured, about 50 instructions per request for raw axum
/// and 150 for tower-sessions.
fn as_in_a_server() {
    static SECOND_THREAD: std::sync::Once = std::sync::Once::new();
    SECOND_THREAD.call_once(|| {
        std::thread::Builder::new()
            .name("bench-idle".into())
            .spawn(|| {
                loop {
                    std::thread::park();
                }
            })
            .expect("a second thread");
    });
}

/// The local servers of `.ci/services`, for the backend contenders.
pub const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Sessions in the pool of the hot and read-only workloads.
pub const POOL: usize = 10_000;

/// A contender ready to serve one workload.
pub struct Bench {
    app: Router,
    workload: Workload,
    cookies: Vec<HeaderValue>,
    rng: u64,
}

impl Bench {
    /// Builds the contender and, for the pooled workloads, `pool` sessions.
    pub async fn new(contender: Contender, workload: Workload, pool: usize) -> Self {
        as_in_a_server();
        let app = contender.router().await;
        let mut cookies = Vec::new();
        if workload != Workload::Fresh && contender != Contender::RawAxum {
            while cookies.len() < pool {
                // Keep only cookies that name the new session (see `check` on axum_session).
                if let (_, Some(cookie)) = send(&app, "/count", None).await
                    && send(&app, "/read", Some(cookie.clone())).await.0 == "1"
                {
                    cookies.push(cookie);
                }
            }
        } else {
            cookies.push(HeaderValue::from_static("unused=1"));
        }
        Self {
            app,
            workload,
            cookies,
            // A fixed seed: every run and every contender visits the same sequence of sessions.
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// One request of the workload.
    pub async fn request(&mut self) -> usize {
        let (path, cookie) = match self.workload {
            Workload::Fresh => ("/count", None),
            Workload::Hot => ("/count", Some(self.pick())),
            Workload::ReadOnly => ("/read", Some(self.pick())),
        };
        serve(&self.app, path, cookie).await
    }

    /// xorshift64: a deterministic, allocation-free index into the pool.
    fn pick(&mut self) -> HeaderValue {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let index = usize::try_from(self.rng % self.cookies.len() as u64).unwrap_or(0);
        self.cookies[index].clone()
    }
}

/// Checks that `contender` counts per client: 1 then 2 with its own cookie, and 1 for another
/// client. The ceiling (raw axum) has no sessions and is exempt.
///
/// axum_session 0.22.1 sometimes answers a new session's first request with only its `store`
/// cookie and not the session cookie (seen in about 4 of 10 tries), so a client loses the new
/// session; the check allows a few tries so that quirk does not stop its measurement.
pub async fn check(contender: Contender) -> Result<(), String> {
    if contender == Contender::RawAxum {
        return Ok(());
    }
    let mut outcome = Err(String::new());
    for _ in 0..10 {
        outcome = check_once(contender).await;
        if outcome.is_ok() {
            break;
        }
    }
    outcome
}

async fn check_once(contender: Contender) -> Result<(), String> {
    let app = contender.router().await;
    let (first, cookie) = send(&app, "/count", None).await;
    let cookie = cookie.ok_or_else(|| format!("{contender}: no Set-Cookie on the first write"))?;
    let (second, _) = send(&app, "/count", Some(cookie.clone())).await;
    let (read, _) = send(&app, "/read", Some(cookie)).await;
    let (other, _) = send(&app, "/count", None).await;
    if (
        first.as_str(),
        second.as_str(),
        read.as_str(),
        other.as_str(),
    ) != ("1", "2", "2", "1")
    {
        return Err(format!(
            "{contender}: expected 1, 2, read 2, other client 1; got {first}, {second}, read {read}, other {other}"
        ));
    }
    Ok(())
}

/// Sends one GET; returns the body and the `name=value` pair of the first `Set-Cookie` (the
/// session cookie of every contender), ready to send back as a `Cookie` header. For checks and
/// for building the pool: the measured requests go through [`serve`], which does no client work.
pub async fn send(
    app: &Router,
    path: &str,
    cookie: Option<HeaderValue>,
) -> (String, Option<HeaderValue>) {
    let response = respond(app, path, cookie).await;
    let cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|value| {
            let pair = value.to_str().ok()?.split(';').next()?;
            HeaderValue::from_str(pair).ok()
        });
    let body = drain(response).await;
    (String::from_utf8_lossy(&body).into_owned(), cookie)
}

/// One measured request: what a server does with it (route it, run it, take the body out) and
/// nothing a client would do after (no `Set-Cookie` parsing, no body text). Returns the body's
/// length.
pub async fn serve(app: &Router, path: &str, cookie: Option<HeaderValue>) -> usize {
    let response = respond(app, path, cookie).await;
    drain(response).await.len()
}

async fn respond(app: &Router, path: &str, cookie: Option<HeaderValue>) -> Response<Body> {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    app.clone()
        .oneshot(request.body(Body::empty()).expect("a valid request"))
        .await
        .expect("routers are infallible")
}

/// The response's body, as a server would stream it out; then the tasks a contender spawned
/// run (axum_session stores new sessions from a spawned task), as a server's other connections
/// would let them. Every contender pays this alike.
async fn drain(response: Response<Body>) -> Bytes {
    let body = response
        .into_body()
        .collect()
        .await
        .expect("bodies are in memory")
        .to_bytes();
    tokio::task::yield_now().await;
    body
}

mod floor;
mod redis_floor;

mod raw {
    use super::*;

    pub fn router() -> Router {
        Router::new()
            .route("/count", get(|| async { "1" }))
            .route("/read", get(|| async { "1" }))
    }
}

mod typed {
    use super::*;
    use typed_session::backend::{PostgresBackend, RedisBackend, SqliteBackend};
    use typed_session::{
        Key, SessionConfig, SessionData, SessionLayer, SessionStore, TypedSession,
    };

    #[derive(SessionData)]
    struct Counter {
        count: u64,
    }

    async fn count(session: TypedSession<Counter>) -> String {
        session
            .update_count(|count| {
                *count += 1;
                *count
            })
            .to_string()
    }

    async fn read(session: TypedSession<Counter>) -> String {
        session.count().to_string()
    }

    /// [`Counter`] with 10 KiB of text beside the count, written with the session's first save
    /// and never changed after.
    #[derive(SessionData)]
    struct Padded {
        count: u64,
        #[session(default = "ten_kib")]
        padding: String,
    }

    fn ten_kib() -> String {
        "0123456789abcdef".repeat(640)
    }

    async fn count_padded(session: TypedSession<Padded>) -> String {
        session
            .update_count(|count| {
                *count += 1;
                *count
            })
            .to_string()
    }

    async fn read_padded(session: TypedSession<Padded>) -> String {
        session.count().to_string()
    }

    pub enum Variant {
        Memory,
        Signed,
        Sqlite,
        Postgres,
        Redis,
    }

    pub async fn router(variant: Variant) -> Router {
        Router::new()
            .route("/count", get(count))
            .route("/read", get(read))
            .layer(SessionLayer::new(store::<Counter>(variant, "").await))
    }

    pub async fn padded_router(variant: Variant) -> Router {
        Router::new()
            .route("/count", get(count_padded))
            .route("/read", get(read_padded))
            .layer(SessionLayer::new(store::<Padded>(variant, "_padded").await))
    }

    /// The store of `variant`; `suffix` tells its table or key prefix from the other types'.
    async fn store<T: SessionData>(variant: Variant, suffix: &str) -> SessionStore<T> {
        let config = SessionConfig::default().with_secure(false);
        let builder = SessionStore::<T>::builder();
        match variant {
            Variant::Memory => builder.config(config).build().await,
            Variant::Signed => {
                builder
                    .config(config.with_key(Key::generate()))
                    .build()
                    .await
            }
            Variant::Sqlite => {
                let path = std::env::temp_dir().join(format!(
                    "typed-session-bench-{}-{}.db",
                    std::process::id(),
                    typed_session::SessionId::generate()
                ));
                let backend =
                    SqliteBackend::connect(&format!("sqlite://{}?mode=rwc", path.display()))
                        .await
                        .expect("a temporary SQLite file")
                        .with_partial_writes(!suffix.is_empty());
                builder.backend(backend).config(config).build().await
            }
            Variant::Postgres => {
                let backend = PostgresBackend::connect(super::POSTGRES_URL)
                    .await
                    .expect("the local PostgreSQL (.ci/services)")
                    // One table for every run: a killed bench server leaves nothing new behind.
                    .with_table_name(&format!("bench_typed_sessions{suffix}"))
                    .expect("a valid table name")
                    .with_partial_writes(!suffix.is_empty());
                builder.backend(backend).config(config).build().await
            }
            Variant::Redis => {
                let backend = RedisBackend::connect(super::REDIS_URL)
                    .await
                    .expect("the local Redis (.ci/services)")
                    .with_prefix(&format!("bench:typed{suffix}:"))
                    .expect("a valid prefix")
                    .with_partial_writes(!suffix.is_empty());
                builder.backend(backend).config(config).build().await
            }
        }
        .expect("a valid store")
    }
}

mod tower_sessions_peer {
    use super::*;
    use tower_sessions::cookie::Key;
    use tower_sessions::{MemoryStore, Session, SessionManagerLayer};

    async fn count(session: Session) -> String {
        let count = session
            .get::<u64>("count")
            .await
            .ok()
            .flatten()
            .unwrap_or(0)
            + 1;
        let _ = session.insert("count", count).await;
        count.to_string()
    }

    async fn read(session: Session) -> String {
        session
            .get::<u64>("count")
            .await
            .ok()
            .flatten()
            .unwrap_or(0)
            .to_string()
    }

    fn routes() -> Router {
        Router::new()
            .route("/count", get(count))
            .route("/read", get(read))
    }

    pub async fn postgres_router() -> Router {
        let pool = sqlx::PgPool::connect(super::POSTGRES_URL)
            .await
            .expect("the local PostgreSQL (.ci/services)");
        let store = tower_sessions_sqlx_store::PostgresStore::new(pool)
            .with_schema_name("bench_tower_sessions")
            .expect("a valid schema name");
        store.migrate().await.expect("its schema");
        routes().layer(SessionManagerLayer::new(store).with_secure(false))
    }

    pub async fn redis_router() -> Router {
        use tower_sessions_redis_store::fred::prelude::{ClientLike, Config, Pool};
        let config = Config::from_url(super::REDIS_URL).expect("a Redis URL");
        let pool = Pool::new(config, None, None, None, 6).expect("a Redis pool");
        pool.init().await.expect("the local Redis (.ci/services)");
        let store = tower_sessions_redis_store::RedisStore::new(pool);
        routes().layer(SessionManagerLayer::new(store).with_secure(false))
    }

    pub fn router(signed: bool) -> Router {
        let routes = routes();
        let layer = SessionManagerLayer::new(MemoryStore::default()).with_secure(false);
        if signed {
            routes.layer(layer.with_signed(Key::generate()))
        } else {
            routes.layer(layer)
        }
    }
}

mod axum_session_peer {
    use super::*;
    use axum_session::{Key, Session, SessionConfig, SessionLayer, SessionNullPool, SessionStore};

    async fn count(session: Session<SessionNullPool>) -> String {
        let count = session.get::<u64>("count").unwrap_or(0) + 1;
        session.set("count", count);
        count.to_string()
    }

    async fn read(session: Session<SessionNullPool>) -> String {
        session.get::<u64>("count").unwrap_or(0).to_string()
    }

    pub async fn router(signed: bool) -> Router {
        let mut config = SessionConfig::default().with_secure(false);
        if signed {
            config = config.with_key(Key::generate());
        }
        let store = SessionStore::<SessionNullPool>::new(None, config)
            .await
            .expect("a null-pool store");
        Router::new()
            .route("/count", get(count))
            .route("/read", get(read))
            .layer(SessionLayer::new(store))
    }
}
