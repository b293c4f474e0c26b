//! The load every fault scenario runs, and what it must show afterwards: many clients writing
//! to their sessions through a real `Router` while the database fails under them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use typed_session::backend::SessionBackend;
use typed_session::{SessionConfig, SessionData, SessionLayer, SessionStore, TypedSession};

use crate::common::processes::Server;
use crate::common::{Browser, StatusCode, get_with_cookie};

/// Sessions written at once, each by [`WRITERS_PER_SESSION`] clients in parallel.
const SESSIONS: usize = 32;

/// Clients per session: requests of one session also queue behind each other's saves.
pub const WRITERS_PER_SESSION: u32 = 3;

/// How long a refused client waits before its next request, as a retrying client would; it
/// keeps the outage's flood of quick 503s from starving everything else on the machine.
const RETRY_PAUSE: Duration = Duration::from_millis(10);

/// What is done to the database server in the middle of the load.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// `SIGKILL`, then a start on the same data and port.
    Crash,
    /// `SIGSTOP`, then `SIGCONT`.
    Freeze,
}

/// One scenario's timing.
#[derive(Debug)]
pub struct Plan {
    pub fault: Fault,
    /// Load before the fault, so that it strikes requests in flight.
    pub warm_up: Duration,
    /// How long the server stays down. Longer than `bound`, so a request that starts as the
    /// fault strikes must be answered while the server is still down: waiting for the server
    /// to come back does not pass.
    pub outage: Duration,
    /// How long one backend call may take (`SessionConfig::with_backend_timeout`).
    pub backend_timeout: Duration,
    /// The longest any request may take to be answered, before, during or after the outage.
    pub bound: Duration,
    /// How soon after the server is back every session must take a write again, without
    /// anything being rebuilt or restarted in the application.
    pub recovery: Duration,
}

/// A session whose every acknowledged write leaves its own trace: the request's token.
#[derive(SessionData)]
pub struct Ledger {
    tokens: Vec<u64>,
}

#[derive(serde::Deserialize)]
struct Token {
    token: u64,
}

async fn append(session: TypedSession<Ledger>, Query(Token { token }): Query<Token>) {
    session.update_tokens(|tokens| tokens.push(token));
}

async fn list(session: TypedSession<Ledger>) -> String {
    session.read(|ledger| serde_json::to_string(&ledger.tokens).unwrap())
}

/// The application: one store on `backend`, built once, as a server process would, with
/// `backend_timeout` on every backend call.
async fn application<B: SessionBackend>(backend: B, backend_timeout: Duration) -> Router {
    let store = SessionStore::<Ledger>::builder()
        .backend(backend)
        .config(SessionConfig::default().with_backend_timeout(backend_timeout))
        .build()
        .await
        .unwrap();
    Router::new()
        .route("/append", get(append))
        .route("/list", get(list))
        .layer(SessionLayer::new(store))
}

/// One write request and how it ended: `status` is `None` when it was not answered within the
/// bound.
#[derive(Debug, Clone, Copy)]
struct Outcome {
    session: usize,
    token: u64,
    started: Instant,
    finished: Instant,
    status: Option<StatusCode>,
}

impl Outcome {
    fn acknowledged(&self) -> bool {
        self.status == Some(StatusCode::OK)
    }

    fn took(&self) -> Duration {
        self.finished - self.started
    }
}

/// What the clients share: the token counter, the stop signal, and per session when the
/// latest acknowledged write started (milliseconds after `epoch`), to see recovery as it
/// happens.
struct Shared {
    epoch: Instant,
    bound: Duration,
    next_token: AtomicU64,
    stop: AtomicBool,
    last_acknowledged: Vec<AtomicU64>,
}

impl Shared {
    fn millis(&self, at: Instant) -> u64 {
        u64::try_from((at - self.epoch).as_millis()).unwrap()
    }

    /// Appends a fresh token to session `session` (cookie `cookie`) and records the outcome.
    async fn write(&self, app: &Router, session: usize, cookie: &str) -> Outcome {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let path = format!("/append?token={token}");
        let started = Instant::now();
        let reply = tokio::time::timeout(self.bound, get_with_cookie(app, &path, cookie)).await;
        let outcome = Outcome {
            session,
            token,
            started,
            finished: Instant::now(),
            status: reply.ok().map(|reply| reply.status),
        };
        if outcome.acknowledged() {
            self.last_acknowledged[session].fetch_max(self.millis(started), Ordering::Relaxed);
        }
        outcome
    }

    /// Whether every session has had a write acknowledged that started at `since` or later.
    fn all_written_since(&self, since: Instant) -> bool {
        let since = self.millis(since);
        self.last_acknowledged
            .iter()
            .all(|at| at.load(Ordering::Relaxed) >= since)
    }
}

/// One client: writes to its session until told to stop.
async fn client(app: Router, shared: Arc<Shared>, session: usize, cookie: String) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    while !shared.stop.load(Ordering::Relaxed) {
        let outcome = shared.write(&app, session, &cookie).await;
        outcomes.push(outcome);
        if !outcome.acknowledged() {
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
    outcomes
}

/// When the fault struck and was mended, as the load saw it.
struct Timeline {
    /// Just after the fault took hold: from here on nothing can be acknowledged.
    struck: Instant,
    /// Just before the server was started again or resumed.
    mending: Instant,
    /// How soon after the server's return every session had a write acknowledged, if within
    /// the plan's recovery time.
    recovered_in: Option<Duration>,
}

/// Runs `plan` against `server`: the load on an application whose backend `connect` opens,
/// the fault in the middle of it, and then the checks, the last of them on a fresh store
/// (a new connection, an empty cache) that reads back what the database holds.
///
/// What must hold:
/// - every request is answered, 200 or 503, within `plan.bound`;
/// - a request that starts and ends while the server is down is a 503, and there are such
///   requests (the outage was seen, and answered before it ended);
/// - within `plan.recovery` of the server's return every session takes writes again, and
///   after the load a write to each session succeeds: the same application, nothing rebuilt;
/// - every write answered 200 is in the database (0 lost), and no session holds a token that
///   was never sent to it.
///
/// A write answered 503 may or may not be stored, and nothing is asserted about it: when a
/// save fails in flight (the connection reset, or no answer in time), the database may have
/// applied it before the failure, and neither the server nor the client can know.
pub async fn run<B: SessionBackend>(
    server: &mut Server,
    plan: Plan,
    connect: impl AsyncFn(&str) -> B,
) {
    assert!(
        plan.outage > plan.bound,
        "{plan:?}: the outage must outlast the bound"
    );
    let label = format!("{} {:?}", server.name(), plan.fault);
    let app = application(connect(server.url()).await, plan.backend_timeout).await;
    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        bound: plan.bound,
        next_token: AtomicU64::new(1),
        stop: AtomicBool::new(false),
        last_acknowledged: (0..SESSIONS).map(|_| AtomicU64::new(0)).collect(),
    });
    let (cookies, mut outcomes) = open_sessions(&app, &shared).await;

    let clients: Vec<_> = (0..SESSIONS * WRITERS_PER_SESSION as usize)
        .map(|n| {
            let session = n % SESSIONS;
            let cookie = cookies[session].clone();
            tokio::spawn(client(app.clone(), Arc::clone(&shared), session, cookie))
        })
        .collect();
    let timeline = strike_and_mend(server, &plan, &shared).await;
    shared.stop.store(true, Ordering::Relaxed);
    for client in clients {
        outcomes.extend(client.await.unwrap());
    }
    let mut after = Vec::new();
    for (session, cookie) in cookies.iter().enumerate() {
        after.push(shared.write(&app, session, cookie).await);
    }
    outcomes.extend(after.iter().copied());

    let during = check_answers(&label, &plan, &timeline, &outcomes);
    let recovered_in = timeline.recovered_in.unwrap_or_else(|| {
        panic!(
            "{label}: not every session took a write within {:?} of the server's return",
            plan.recovery
        )
    });
    let failed_after: Vec<_> = after.iter().filter(|o| !o.acknowledged()).collect();
    assert!(
        failed_after.is_empty(),
        "{label}: writes failed after the recovery: {failed_after:?}"
    );

    let fresh = application(connect(server.url()).await, plan.backend_timeout).await;
    let (lost, stored_anyway) = read_back(&label, &fresh, &cookies, &outcomes).await;
    let acknowledged = outcomes.iter().filter(|o| o.acknowledged()).count();
    let slowest = outcomes.iter().map(Outcome::took).max().unwrap_or_default();
    println!(
        "{label}: {} writes, {acknowledged} acknowledged, {} answered 503 ({during} of them \
         during the outage, {stored_anyway} stored nonetheless); slowest answer {slowest:?} \
         (bound {:?}); every session written again {recovered_in:?} after the server's \
         return; {} acknowledged writes lost",
        outcomes.len(),
        outcomes.len() - acknowledged,
        plan.bound,
        lost.len(),
    );
    assert!(
        lost.is_empty(),
        "{label}: {} acknowledged writes are not stored; the first: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
}

/// Creates the sessions, one write each (which must succeed: the server is up), and returns
/// their cookies and those writes.
async fn open_sessions(app: &Router, shared: &Shared) -> (Vec<String>, Vec<Outcome>) {
    let mut cookies = Vec::new();
    let mut outcomes = Vec::new();
    for session in 0..SESSIONS {
        let mut browser = Browser::new(app);
        let token = shared.next_token.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let reply = browser.get(&format!("/append?token={token}")).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "creating a session: {}",
            reply.body
        );
        outcomes.push(Outcome {
            session,
            token,
            started,
            finished: Instant::now(),
            status: Some(reply.status),
        });
        let (name, value) = browser.jar.first_key_value().expect("a session cookie");
        cookies.push(format!("{name}={value}"));
    }
    (cookies, outcomes)
}

/// With the load running: waits out the warm-up, strikes, waits out the outage, mends, and
/// waits (up to the recovery time) until every session has taken a write again.
async fn strike_and_mend(server: &mut Server, plan: &Plan, shared: &Shared) -> Timeline {
    tokio::time::sleep(plan.warm_up).await;
    match plan.fault {
        Fault::Crash => server.kill(),
        Fault::Freeze => server.pause(),
    }
    let struck = Instant::now();
    tokio::time::sleep(plan.outage).await;
    let mending = Instant::now();
    match plan.fault {
        Fault::Crash => server.restart().await,
        Fault::Freeze => server.resume(),
    }
    let back = Instant::now();
    while !shared.all_written_since(back) && back.elapsed() < plan.recovery {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Timeline {
        struck,
        mending,
        recovered_in: shared.all_written_since(back).then(|| back.elapsed()),
    }
}

/// Checks that every request was answered 200 or 503 within the bound, and that requests
/// answered while the server was down were all 503s, of which there were some; returns how
/// many.
fn check_answers(label: &str, plan: &Plan, timeline: &Timeline, outcomes: &[Outcome]) -> usize {
    let unanswered: Vec<_> = outcomes.iter().filter(|o| o.status.is_none()).collect();
    assert!(
        unanswered.is_empty(),
        "{label}: {} requests were not answered within {:?}; the first: {:?}",
        unanswered.len(),
        plan.bound,
        unanswered.first(),
    );
    let odd: Vec<_> = outcomes
        .iter()
        .filter(|o| {
            !matches!(
                o.status,
                Some(StatusCode::OK | StatusCode::SERVICE_UNAVAILABLE)
            )
        })
        .collect();
    assert!(
        odd.is_empty(),
        "{label}: answers other than 200 and 503: {odd:?}"
    );
    let during: Vec<_> = outcomes
        .iter()
        .filter(|o| o.started >= timeline.struck && o.finished < timeline.mending)
        .collect();
    let acknowledged_while_down: Vec<_> = during.iter().filter(|o| o.acknowledged()).collect();
    assert!(
        acknowledged_while_down.is_empty(),
        "{label}: writes acknowledged while the server was down: {acknowledged_while_down:?}"
    );
    assert!(
        !during.is_empty(),
        "{label}: no request was answered during the outage"
    );
    during.len()
}

/// Reads every session back through `fresh` and compares it with what was sent: fails if a
/// session holds a token that was never sent to it; returns the acknowledged writes that are
/// missing, and how many writes answered 503 are stored all the same.
async fn read_back(
    label: &str,
    fresh: &Router,
    cookies: &[String],
    outcomes: &[Outcome],
) -> (Vec<Outcome>, usize) {
    let mut sent: BTreeMap<usize, BTreeSet<u64>> = BTreeMap::new();
    for outcome in outcomes {
        sent.entry(outcome.session)
            .or_default()
            .insert(outcome.token);
    }
    let mut lost = Vec::new();
    let mut stored_anyway = 0;
    for (session, cookie) in cookies.iter().enumerate() {
        let reply = get_with_cookie(fresh, "/list", cookie).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{label}: reading back: {}",
            reply.body
        );
        let stored: BTreeSet<u64> = serde_json::from_str(&reply.body).unwrap();
        let foreign: Vec<_> = stored.difference(&sent[&session]).collect();
        assert!(
            foreign.is_empty(),
            "{label}: session {session} holds tokens never sent to it: {foreign:?}"
        );
        for outcome in outcomes.iter().filter(|o| o.session == session) {
            match (outcome.acknowledged(), stored.contains(&outcome.token)) {
                (true, false) => lost.push(*outcome),
                (false, true) => stored_anyway += 1,
                _ => {}
            }
        }
    }
    (lost, stored_anyway)
}
