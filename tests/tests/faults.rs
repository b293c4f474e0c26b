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

use typed_session::backend::{PostgresBackend, RedisBackend};

use common::processes::{postgres_server, redis_server};
use load::{Fault, Plan, run};

/// How long one backend call may wait for the database before it fails
/// (`SessionConfig::with_backend_timeout`, 5 s by default; shorter here to keep the suite
/// short). The backends are built with their plain `connect`, as an application would.
const BACKEND_TIMEOUT: Duration = Duration::from_millis(500);

/// The longest any request may take, outage or not. A request makes at most two backend calls
/// before its handler (a load, a touch) and, when storage fails, one after it (a save; the saves
/// queued behind a failed one fail at once, since it drops the session's cached copy): three
/// backend timeouts, doubled for a busy machine.
const BOUND: Duration = BACKEND_TIMEOUT.saturating_mul(6);

/// One scenario at a time: each one's bound is a claim about response times, which is only
/// fair with the machine's cores to itself.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn redis(url: &str) -> RedisBackend {
    RedisBackend::connect(url).await.unwrap()
}

async fn postgres(url: &str) -> PostgresBackend {
    PostgresBackend::connect(url).await.unwrap()
}

/// A second of load, then four seconds of outage: longer than [`BOUND`], so answering within
/// the bound means answering during the outage. Five seconds to recover.
fn plan(fault: Fault) -> Plan {
    Plan {
        fault,
        warm_up: Duration::from_secs(1),
        outage: Duration::from_secs(4),
        backend_timeout: BACKEND_TIMEOUT,
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

/// A frozen PostgreSQL: the queries on the wire when it freezes get no answer, and neither the
/// pool nor the driver limits how long one may take; the store's backend timeout does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_postgres_under_load_gives_503s_in_time_and_loses_no_acknowledged_write() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let Some(mut server) = postgres_server().await else {
        return;
    };
    run(&mut server, plan(Fault::Freeze), postgres).await;
}
