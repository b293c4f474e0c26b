//! Many servers behave like one: a save or a delete on one server reaches every other server's
//! cached copy through the backend's announcements (Redis pub/sub, PostgreSQL `LISTEN`/`NOTIFY`),
//! well before the touch interval (60 s here) would. Each "server" is a store of its own with a backend of its own
//! (its own connections and pub/sub subscription), as separate processes would have; the
//! client carries its cookie from one to the other, as behind a load balancer.

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use typed_session::backend::{PostgresBackend, RedisBackend};
use typed_session::{SessionConfig, SessionData, SessionLayer, SessionStore, TypedSession};

use crate::common::Browser;
use crate::common::processes::{Server, postgres_server, redis_server};
use crate::common::services::{postgres_url, redis_url, unique_name};

/// The promise: another server's change is seen within this, at the 99th percentile.
const P99_BOUND: Duration = Duration::from_millis(100);

/// How long a check waits before it calls a change missed.
const PATIENCE: Duration = Duration::from_secs(3);

#[derive(SessionData)]
struct Counter {
    count: u64,
}

async fn increment(session: TypedSession<Counter>) -> String {
    session
        .update_count(|count| {
            *count += 1;
            *count
        })
        .to_string()
}

async fn peek(session: TypedSession<Counter>) -> String {
    session.count().to_string()
}

async fn destroy(session: TypedSession<Counter>) {
    session.destroy();
}

/// Where the servers of a test keep their sessions.
enum Broker {
    /// Redis at the URL, under the key prefix.
    Redis(String, String),
    /// PostgreSQL at the URL, in the table.
    Postgres(String, String),
}

impl Broker {
    fn redis(url: &str) -> Self {
        Self::Redis(url.to_owned(), format!("{}:", unique_name("changes")))
    }

    fn postgres(url: &str) -> Self {
        Self::Postgres(url.to_owned(), unique_name("changes"))
    }

    /// Drops a PostgreSQL test table, its trigger and its function.
    async fn clean_up(&self) {
        if let Self::Postgres(url, table) = self {
            let pool = sqlx::PgPool::connect(url)
                .await
                .expect("PostgreSQL answers");
            for statement in [
                format!("DROP TABLE IF EXISTS \"{table}\""),
                format!("DROP FUNCTION IF EXISTS \"{table}_announce\"()"),
            ] {
                sqlx::query(&statement)
                    .execute(&pool)
                    .await
                    .expect("clean-up");
            }
        }
    }
}

/// One server. `follow`: its backend subscribes to other servers' changes (Redis built with
/// `connect`); otherwise Redis from a connection manager, which cannot subscribe and stands
/// for the touch bound alone.
async fn server(broker: &Broker, follow: bool) -> Router {
    app(&server_store(broker, follow).await)
}

fn app(store: &SessionStore<Counter>) -> Router {
    Router::new()
        .route("/increment", get(increment))
        .route("/peek", get(peek))
        .route("/destroy", get(destroy))
        .layer(SessionLayer::new(store.clone()))
}

/// The store of [`server`].
async fn server_store(broker: &Broker, follow: bool) -> SessionStore<Counter> {
    let builder = SessionStore::<Counter>::builder();
    let builder = match broker {
        Broker::Redis(url, prefix) => {
            let connected = RedisBackend::connect(url).await.expect("Redis answers");
            let backend = if follow {
                connected
            } else {
                RedisBackend::from_manager(connected.manager().clone())
            };
            builder.backend(backend.with_prefix(prefix).expect("a valid prefix"))
        }
        Broker::Postgres(url, table) => {
            assert!(follow, "every PostgreSQL backend follows");
            let backend = PostgresBackend::connect(url)
                .await
                .expect("PostgreSQL answers");
            builder.backend(backend.with_table_name(table).expect("a valid name"))
        }
    };
    builder
        .config(SessionConfig::default().with_secure(false))
        .build()
        .await
        .expect("a store")
}

/// How long until `browser` reads `expected` from `/peek`, polled every 2 ms; `None` after
/// `limit`.
async fn time_until(browser: &mut Browser, expected: &str, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if browser.get("/peek").await.body == expected {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    None
}

/// The `p`-th percentile of `samples`.
fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let rank = (p / 100.0 * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

/// A client with a session created on `a` and cached on `b`; returns its browsers on both,
/// after `b` has seen one change from `a` (so its subscription is up).
async fn shared_session(a: &Router, b: &Router) -> (Browser, Browser) {
    let mut on_a = Browser::new(a);
    assert_eq!(on_a.get("/increment").await.body, "1");
    let mut on_b = on_a.on(b);
    assert_eq!(on_b.get("/peek").await.body, "1");
    assert_eq!(on_a.get("/increment").await.body, "2");
    assert!(
        time_until(&mut on_b, "2", PATIENCE).await.is_some(),
        "the second server never saw the first server's change"
    );
    (on_a, on_b)
}

async fn saves_reach_the_other_cache(broker: Broker) {
    let (a, b) = (server(&broker, true).await, server(&broker, true).await);
    let (mut on_a, mut on_b) = shared_session(&a, &b).await;
    let mut latencies = Vec::new();
    for round in 3..=102_u64 {
        assert_eq!(on_a.get("/increment").await.body, round.to_string());
        let seen = time_until(&mut on_b, &round.to_string(), PATIENCE).await;
        latencies.push(seen.unwrap_or_else(|| panic!("round {round}: the change never arrived")));
    }
    let p99 = percentile(&mut latencies, 99.0);
    let p50 = percentile(&mut latencies, 50.0);
    println!("another server's save seen after: p50 {p50:?}, p99 {p99:?}");
    broker.clean_up().await;
    assert!(p99 < P99_BOUND, "p99 {p99:?}, over {P99_BOUND:?}");
}

async fn a_logout_reaches_the_other_cache(broker: Broker) {
    let (a, b) = (server(&broker, true).await, server(&broker, true).await);
    let mut latencies = Vec::new();
    for _ in 0..20 {
        let (mut on_a, mut on_b) = shared_session(&a, &b).await;
        on_a.get("/destroy").await;
        let started = Instant::now();
        // Ended here too: the next request on the second server is a new visitor's.
        let mut ended = None;
        while started.elapsed() < PATIENCE {
            let mut probe = on_b.clone();
            if probe.get("/peek").await.body == "0" {
                ended = Some(started.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(ended.expect("the logout never reached the second server"));
        assert_eq!(on_b.get("/peek").await.body, "0");
    }
    let p99 = percentile(&mut latencies, 99.0);
    broker.clean_up().await;
    assert!(p99 < P99_BOUND, "p99 {p99:?}, over {P99_BOUND:?}");
}

/// How long until `browser`'s session is gone on its server (a request there starts afresh);
/// `None` after [`PATIENCE`].
async fn time_until_ended(browser: &Browser) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < PATIENCE {
        if browser.clone().get("/peek").await.body == "0" {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    None
}

/// The store's own destructions outside a request (by id, and all at once) reach another
/// server's cache as a log-out does.
async fn admin_destructions_reach_the_other_cache(broker: Broker) {
    let store_a = server_store(&broker, true).await;
    let (a, b) = (app(&store_a), server(&broker, true).await);

    let (on_a, on_b) = shared_session(&a, &b).await;
    let id = on_a.jar["counter"].parse().expect("an unsigned id");
    store_a.destroy_id(id).await.expect("destroyed");
    let seen = time_until_ended(&on_b)
        .await
        .expect("destroy_id never reached the other server");
    assert!(seen < P99_BOUND, "destroy_id seen after {seen:?}");

    let (_on_a, on_b) = shared_session(&a, &b).await;
    store_a.clear_all().await.expect("cleared");
    let seen = time_until_ended(&on_b)
        .await
        .expect("clear_all never reached the other server");
    assert!(seen < P99_BOUND, "clear_all seen after {seen:?}");
    broker.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stores_destroy_and_clear_all_reach_other_servers_on_redis() {
    let Some(url) = redis_url() else { return };
    admin_destructions_reach_the_other_cache(Broker::redis(&url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stores_destroy_and_clear_all_reach_other_servers_on_postgres() {
    let Some(url) = postgres_url() else { return };
    admin_destructions_reach_the_other_cache(Broker::postgres(&url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_servers_saves_reach_this_cache_within_100_ms_on_redis() {
    let Some(url) = redis_url() else { return };
    saves_reach_the_other_cache(Broker::redis(&url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_servers_saves_reach_this_cache_within_100_ms_on_postgres() {
    let Some(url) = postgres_url() else { return };
    saves_reach_the_other_cache(Broker::postgres(&url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_servers_logout_ends_the_session_here_within_100_ms_on_redis() {
    let Some(url) = redis_url() else { return };
    a_logout_reaches_the_other_cache(Broker::redis(&url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_servers_logout_ends_the_session_here_within_100_ms_on_postgres() {
    let Some(url) = postgres_url() else { return };
    a_logout_reaches_the_other_cache(Broker::postgres(&url)).await;
}

/// The control: a server that does not follow changes keeps serving its copy until its touch,
/// so the two tests above measure the announcements, not something else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_does_not_follow_changes_serves_its_copy_until_the_touch() {
    let Some(url) = redis_url() else { return };
    let broker = Broker::redis(&url);
    let (a, b) = (server(&broker, true).await, server(&broker, false).await);
    let mut on_a = Browser::new(&a);
    assert_eq!(on_a.get("/increment").await.body, "1");
    let mut on_b = on_a.on(&b);
    assert_eq!(on_b.get("/peek").await.body, "1");
    assert_eq!(on_a.get("/increment").await.body, "2");
    assert_eq!(
        time_until(&mut on_b, "2", Duration::from_millis(500)).await,
        None,
        "without announcements the copy should stay until the touch interval"
    );
}

/// Drops every subscription the servers hold, leaving the broker up: Redis's pub/sub
/// connections, PostgreSQL's `LISTEN`ing backends. Only ever on a server of the test's own.
async fn drop_subscriptions(broker: &Broker) {
    match broker {
        Broker::Redis(url, _) => {
            let client = redis::Client::open(url.as_str()).expect("a Redis URL");
            let mut admin = client
                .get_multiplexed_async_connection()
                .await
                .expect("the broker answers");
            redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("pubsub")
                .query_async::<()>(&mut admin)
                .await
                .expect("CLIENT KILL");
        }
        Broker::Postgres(url, _) => {
            let pool = sqlx::PgPool::connect(url)
                .await
                .expect("PostgreSQL answers");
            let ended: Vec<bool> = sqlx::query_scalar(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()",
            )
            .fetch_all(&pool)
            .await
            .expect("pg_terminate_backend");
            assert!(!ended.is_empty(), "no listening connection to end");
        }
    }
}

/// The subscriptions drop and the broker restarts: meanwhile the servers fall back to
/// confirming their cached sessions with the backend, a change made while a server was not
/// subscribed is not missed, and announcements flow again once the subscription is back.
async fn no_change_is_missed_across_an_outage(mut process: Server, broker: Broker) {
    let (a, b) = (server(&broker, true).await, server(&broker, true).await);
    let (mut on_a, mut on_b) = shared_session(&a, &b).await;

    // A change made before the second server has subscribed again: it never hears of it, and
    // must not serve its copy anyway.
    drop_subscriptions(&broker).await;
    assert_eq!(on_a.get("/increment").await.body, "3");
    assert!(
        time_until(&mut on_b, "3", PATIENCE).await.is_some(),
        "a change made while the subscription was down was missed"
    );

    process.kill();
    process.restart().await;
    // The first write after the restart (crash recovery included), as soon as the first
    // server reconnects; the second server may not have subscribed again yet.
    let started = Instant::now();
    loop {
        let reply = on_a.get("/increment").await;
        if reply.status.is_success() {
            assert_eq!(reply.body, "4", "the restarted broker kept the session");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no write went through after the restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        time_until(&mut on_b, "4", Duration::from_secs(10))
            .await
            .is_some(),
        "a change made around the restart was missed"
    );

    // Once subscribed again (after a backoff of at most a few seconds), announcements are as
    // quick as before.
    let mut round = 4_u64;
    loop {
        round += 1;
        assert_eq!(on_a.get("/increment").await.body, round.to_string());
        let seen = time_until(&mut on_b, &round.to_string(), PATIENCE).await;
        let seen = seen.unwrap_or_else(|| panic!("round {round}: the change never arrived"));
        if seen < P99_BOUND / 2 {
            break;
        }
        assert!(round < 40, "announcements never came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut latencies = Vec::new();
    for round in round + 1..=round + 20 {
        assert_eq!(on_a.get("/increment").await.body, round.to_string());
        let seen = time_until(&mut on_b, &round.to_string(), PATIENCE).await;
        latencies.push(seen.unwrap_or_else(|| panic!("round {round}: the change never arrived")));
    }
    let p99 = percentile(&mut latencies, 99.0);
    assert!(p99 < P99_BOUND, "after the restart, p99 {p99:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_change_is_missed_across_a_redis_outage() {
    let Some(redis) = redis_server().await else {
        return;
    };
    let broker = Broker::Redis(redis.url().to_owned(), "typed_session_changes:".to_owned());
    no_change_is_missed_across_an_outage(redis, broker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_change_is_missed_across_a_postgres_outage() {
    let Some(postgres) = postgres_server().await else {
        return;
    };
    let broker = Broker::Postgres(postgres.url().to_owned(), "typed_sessions".to_owned());
    no_change_is_missed_across_an_outage(postgres, broker).await;
}
