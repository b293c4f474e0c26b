//! The fault suite: Redis and PostgreSQL servers of the tests' own, killed or frozen and
//! brought back while many clients write to their sessions (`faults/load.rs` has the load and
//! the checks). Each scenario shows that every write answered 200 is in the database afterwards
//! (read back through a fresh store), that the application recovers by itself, and that while
//! the server is down requests are answered 503 within [`BOUND`] instead of hanging.
//!
//! The servers run as child processes on free loopback ports, never the shared servers on the
//! standard ports, so killing them disturbs no other test. Each is configured to keep what it
//! acknowledges (Redis with an append-only file fsynced on every write, PostgreSQL with its
//! default `fsync` and `synchronous_commit`): "no acknowledged write lost" is a promise the
//! session store can keep only on top of a database that keeps its own. Without `redis-server`,
//! or without PostgreSQL's `initdb` and `postgres`, a scenario skips with a notice, or fails
//! when `TYPED_SESSION_REQUIRE_SERVICES=1` (as in CI).

#![allow(unreachable_pub)]

mod common;
#[path = "faults/load.rs"]
mod load;

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sqlx::postgres::PgPoolOptions;
use typed_session::backend::{PostgresBackend, RedisBackend};

use common::processes::{postgres_server, redis_server};
use load::{Fault, Plan, WRITERS_PER_SESSION, run};

/// How long one backend operation may wait for the database before it fails: Redis's connect
/// and response timeouts, and the PostgreSQL pool's acquire timeout. The backends' `connect`
/// constructors leave these at their drivers' defaults, under which a request waits up to about
/// 9 s (Redis reconnecting with backoff) or 30 s (sqlx's acquire timeout) for a dead server, so
/// the scenarios build their backends from a manager or pool configured like this instead.
const BACKEND_TIMEOUT: Duration = Duration::from_millis(500);

/// The longest any request may take, outage or not. A session saves one request's writes at a
/// time, so a request can wait behind the saves of its session's other clients, each of which
/// gives up after [`BACKEND_TIMEOUT`]: at most `WRITERS_PER_SESSION × BACKEND_TIMEOUT` (1.5 s),
/// doubled for a busy machine.
const BOUND: Duration = BACKEND_TIMEOUT.saturating_mul(2 * WRITERS_PER_SESSION);

/// One scenario at a time: each one's bound is a claim about response times, which is only
/// fair with the machine's cores to itself.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Redis through a connection manager that tries once to reconnect per failed command instead
/// of retrying with backoff while requests wait.
async fn redis(url: &str) -> RedisBackend {
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(0)
        .set_connection_timeout(Some(BACKEND_TIMEOUT))
        .set_response_timeout(Some(BACKEND_TIMEOUT));
    let client = redis::Client::open(url).unwrap();
    let manager = ConnectionManager::new_with_config(client, config)
        .await
        .unwrap();
    RedisBackend::from_manager(manager)
}

/// PostgreSQL through a pool that gives up on a connection after [`BACKEND_TIMEOUT`].
async fn postgres(url: &str) -> PostgresBackend {
    let pool = PgPoolOptions::new()
        .acquire_timeout(BACKEND_TIMEOUT)
        .connect(url)
        .await
        .unwrap();
    PostgresBackend::from_pool(pool)
}

/// A second of load, then four seconds of outage: longer than [`BOUND`], so answering within
/// the bound means answering during the outage. Five seconds to recover.
fn plan(fault: Fault) -> Plan {
    Plan {
        fault,
        warm_up: Duration::from_secs(1),
        outage: Duration::from_secs(4),
        bound: BOUND,
        recovery: Duration::from_secs(5),
    }
}

/// `SIGKILL` mid-write: clients see their connections reset, new ones refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_crash_under_load_loses_no_acknowledged_write() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let Some(mut server) = redis_server().await else {
        return;
    };
    run(&mut server, plan(Fault::Crash), redis).await;
}

/// `SIGSTOP`: connections stay open and nothing is answered, so only the backend's own
/// timeouts stand between a request and a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_under_load_gives_503s_in_time_and_loses_no_acknowledged_write() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let Some(mut server) = redis_server().await else {
        return;
    };
    run(&mut server, plan(Fault::Freeze), redis).await;
}

/// `SIGKILL` to the postmaster and every backend: PostgreSQL comes back through crash recovery
/// from its write-ahead log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_crash_under_load_loses_no_acknowledged_write() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let Some(mut server) = postgres_server().await else {
        return;
    };
    run(&mut server, plan(Fault::Crash), postgres).await;
}

/// A frozen PostgreSQL: the requests whose queries are on the wire when it freezes wait for as
/// long as it stays frozen, since neither the pool nor `PostgresBackend` puts a time limit on a
/// query once it has a connection. Ignored until the store or the backend bounds every backend
/// operation; it passes then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "requests in flight when PostgreSQL freezes hang until it resumes: no query timeout"]
async fn a_frozen_postgres_under_load_gives_503s_in_time_and_loses_no_acknowledged_write() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let Some(mut server) = postgres_server().await else {
        return;
    };
    run(&mut server, plan(Fault::Freeze), postgres).await;
}
