//! Many servers behave like one: a save or a delete on one server reaches every other server's
//! cached copy through the backend's announcements (Redis pub/sub), well before the touch
//! interval (60 s here) would. Each "server" is a store of its own with a backend of its own
//! (its own connections and pub/sub subscription), as separate processes would have; the
//! client carries its cookie from one to the other, as behind a load balancer.

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use typed_session::backend::RedisBackend;
use typed_session::{SessionConfig, SessionData, SessionLayer, SessionStore, TypedSession};

use crate::common::Browser;
use crate::common::processes::redis_server;
use crate::common::services::{redis_url, unique_name};

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

/// One server on Redis at `url` under `prefix`. `follow`: built with `connect`, which follows
/// other servers' changes; otherwise from a connection manager, which cannot subscribe and
/// stands for the touch bound alone.
async fn server(url: &str, prefix: &str, follow: bool) -> Router {
    let connected = RedisBackend::connect(url).await.expect("Redis answers");
    let backend = if follow {
        connected
    } else {
        RedisBackend::from_manager(connected.manager().clone())
    };
    let store = SessionStore::<Counter>::builder()
        .backend(backend.with_prefix(prefix).expect("a valid prefix"))
        .config(SessionConfig::default().with_secure(false))
        .build()
        .await
        .expect("a store");
    Router::new()
        .route("/increment", get(increment))
        .route("/peek", get(peek))
        .route("/destroy", get(destroy))
        .layer(SessionLayer::new(store))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_servers_saves_reach_this_cache_within_100_ms() {
    let Some(url) = redis_url() else { return };
    let prefix = format!("{}:", unique_name("changes"));
    let (a, b) = (
        server(&url, &prefix, true).await,
        server(&url, &prefix, true).await,
    );
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
    assert!(p99 < P99_BOUND, "p99 {p99:?}, over {P99_BOUND:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_servers_logout_ends_the_session_here_within_100_ms() {
    let Some(url) = redis_url() else { return };
    let prefix = format!("{}:", unique_name("changes"));
    let (a, b) = (
        server(&url, &prefix, true).await,
        server(&url, &prefix, true).await,
    );
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
    assert!(p99 < P99_BOUND, "p99 {p99:?}, over {P99_BOUND:?}");
}

/// The control: a server that does not follow changes keeps serving its copy until its touch,
/// so the two tests above measure the announcements, not something else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_does_not_follow_changes_serves_its_copy_until_the_touch() {
    let Some(url) = redis_url() else { return };
    let prefix = format!("{}:", unique_name("changes"));
    let (a, b) = (
        server(&url, &prefix, true).await,
        server(&url, &prefix, false).await,
    );
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

/// The broker goes away and comes back: meanwhile the servers fall back to confirming their
/// cached sessions with the backend, a change made while a server was not subscribed is not
/// missed, and announcements flow again once the subscription is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_broker_restarts_no_change_is_missed_and_announcements_resume() {
    let Some(mut redis) = redis_server().await else {
        return;
    };
    let prefix = "typed_session_changes:";
    let (a, b) = (
        server(redis.url(), prefix, true).await,
        server(redis.url(), prefix, true).await,
    );
    let (mut on_a, mut on_b) = shared_session(&a, &b).await;

    // The subscriptions drop (the broker stays up) and a change is made before the second
    // server has subscribed again: it never hears of it, and must not serve its copy anyway.
    let client = redis::Client::open(redis.url()).expect("a Redis URL");
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
    assert_eq!(on_a.get("/increment").await.body, "3");
    assert!(
        time_until(&mut on_b, "3", PATIENCE).await.is_some(),
        "a change made while the subscription was down was missed"
    );

    redis.kill();
    redis.restart().await;
    // The first write after the restart, as soon as the first server reconnects; the second
    // server may not have subscribed again yet.
    let started = Instant::now();
    loop {
        let reply = on_a.get("/increment").await;
        if reply.status.is_success() {
            assert_eq!(reply.body, "4", "the restarted broker kept the session");
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "no write went through after the restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        time_until(&mut on_b, "4", PATIENCE).await.is_some(),
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
