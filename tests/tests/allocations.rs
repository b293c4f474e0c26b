//! Heap allocations per request on the hot path, counted (not timed), so a regression fails CI.
//! Each count is taken against the same routes wrapped in a layer that does nothing, in the same
//! process, so axum's own allocations (which vary with its features) cancel out.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, header};
use axum::routing::get;
use tower::ServiceExt;
use typed_session::{SessionConfig, SessionData, SessionLayer, SessionStore, TypedSession};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

#[derive(SessionData)]
struct Counter {
    count: u64,
}

async fn count(session: TypedSession<Counter>) -> &'static str {
    session.update_count(|count| *count += 1);
    "ok"
}

async fn read(session: TypedSession<Counter>) -> &'static str {
    if session.count() > 0 { "ok" } else { "zero" }
}

fn routes() -> Router {
    Router::new()
        .route("/count", get(count))
        .route("/read", get(read))
}

/// The same shape of router: two routes behind a layer, one that does nothing.
fn baseline() -> Router {
    Router::new()
        .route("/count", get(|| async { "ok" }))
        .route("/read", get(|| async { "ok" }))
        .layer(tower::layer::util::Identity::new())
}

async fn call(app: &Router, path: &str, cookie: Option<&HeaderValue>) -> Option<HeaderValue> {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie.clone());
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let cookie = response.headers().get(header::SET_COOKIE).map(|value| {
        HeaderValue::from_str(value.to_str().unwrap().split(';').next().unwrap()).unwrap()
    });
    drop(response);
    cookie
}

/// Average allocations of `requests` calls of `path`, after a warm-up.
async fn allocations(app: &Router, path: &str, cookie: Option<&HeaderValue>) -> f64 {
    const REQUESTS: u64 = 200;
    for _ in 0..20 {
        call(app, path, cookie).await;
    }
    let before = dhat::HeapStats::get().total_blocks;
    for _ in 0..REQUESTS {
        call(app, path, cookie).await;
    }
    (dhat::HeapStats::get().total_blocks - before) as f64 / REQUESTS as f64
}

/// One test for all counts: dhat's profiler is process-wide, so the measurements must not run
/// in parallel with each other.
#[tokio::test(flavor = "current_thread")]
async fn the_hot_path_allocates_no_more_than_it_did() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let store = SessionStore::<Counter>::builder()
        .config(SessionConfig::default().with_secure(false))
        .build()
        .await
        .unwrap();
    let app = routes().layer(SessionLayer::new(store));
    let raw = baseline();
    let cookie = call(&app, "/count", None).await.expect("a session");

    let baseline = allocations(&raw, "/count", Some(&cookie)).await;
    let hot = allocations(&app, "/count", Some(&cookie)).await - baseline;
    let read_only = allocations(&app, "/read", Some(&cookie)).await - baseline;
    let fresh = allocations(&app, "/count", None).await - allocations(&raw, "/count", None).await;
    println!(
        "allocations per request beyond a no-op layer: hot {hot}, read-only {read_only}, fresh {fresh}"
    );

    // The budget, as measured (see benches/README.md): the request's session state and its
    // request extension, and the growth of axum's extension map to hold one more entry (with
    // the workspace's features; `-p tests` alone measures one less); a new session has no
    // separate request state (its entry carries the request's marks) but its entry, its
    // Set-Cookie line (plus this test's own copy of it, in `call`), and the amortised growth of
    // the session map.
    // Half an allocation of slack: a one-off allocation of the runtime inside one of the
    // measured windows moves an average by 1/200, a regression by a whole one.
    assert!(
        hot <= HOT + 0.5,
        "hot path: {hot} allocations beyond a no-op layer (budget {HOT})"
    );
    assert!(
        read_only <= HOT + 0.5,
        "read-only: {read_only} (budget {HOT})"
    );
    assert!(
        fresh <= FRESH + 0.5,
        "new session: {fresh} (budget {FRESH})"
    );
}

const HOT: f64 = 4.0;
const FRESH: f64 = 6.0;
