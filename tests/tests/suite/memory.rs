//! The foundation end to end on the memory store: a real `Router`, real cookies.

use std::time::{Duration, SystemTime};

use crate::common::{
    Browser, HeaderValue, Method, Request, StatusCode, get_with_cookie, header, send, with_route,
};
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use typed_session::{SessionConfig, SessionData, SessionLayer, SessionStore, TypedSession};

#[derive(SessionData)]
struct Visit {
    count: u64,
    #[session(default = "default_greeting")]
    greeting: String,
    #[session(memory_only)]
    notice: Option<String>,
    #[session(rename = "uid")]
    user: Option<u64>,
}

fn default_greeting() -> String {
    "hello".to_owned()
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
        "{} {} {:?} new={}",
        session.count(),
        session.greeting(),
        session.user(),
        session.is_new()
    )
}

async fn id(session: TypedSession<Visit>) -> String {
    session.id().to_string()
}

async fn login(session: TypedSession<Visit>) -> String {
    session.set_user(Some(7));
    session.renew();
    session.id().to_string()
}

async fn logout(session: TypedSession<Visit>) {
    session.destroy();
}

async fn flash_set(session: TypedSession<Visit>) {
    session.set_notice(Some("saved".to_owned()));
}

async fn flash_take(session: TypedSession<Visit>) -> String {
    format!("{:?}", session.take_notice())
}

async fn whole(session: TypedSession<Visit>) -> String {
    session.update(|visit| {
        visit.count += 10;
        visit.greeting = "hi".to_owned();
    });
    session.read(|visit| format!("{} {}", visit.count, visit.greeting))
}

fn config() -> SessionConfig {
    SessionConfig::default().with_secure(false)
}

async fn store_with(config: SessionConfig) -> SessionStore<Visit> {
    SessionStore::<Visit>::builder()
        .config(config)
        .build()
        .await
        .unwrap()
}

fn app(store: &SessionStore<Visit>) -> Router {
    Router::new()
        .route("/", get(increment))
        .route("/peek", get(peek))
        .route("/id", get(id))
        .route("/login", get(login))
        .route("/logout", get(logout))
        .route("/flash", get(flash_take).post(flash_set))
        .route("/whole", get(whole))
        .layer(SessionLayer::new(store.clone()))
}

#[tokio::test]
async fn counter_increments_across_requests() {
    let store = store_with(config()).await;
    let app = app(&store);
    let mut browser = Browser::new(&app);
    for expected in 1..=3 {
        let reply = browser.get("/").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, expected.to_string());
    }
    assert_eq!(store.count(), 1);
    assert_eq!(browser.get("/peek").await.body, "3 hello None new=false");
}

#[tokio::test]
async fn the_cookie_is_set_once_with_the_configured_attributes() {
    let store = store_with(
        SessionConfig::default()
            .with_cookie_name("sid")
            .with_cookie_path("/")
            .with_cookie_domain("example.com"),
    )
    .await;
    let app = app(&store);
    let mut browser = Browser::new(&app);
    let first = browser.get("/").await;
    let line = first
        .cookie_line("sid")
        .expect("the first write sets the cookie");
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
        "Path=/",
        "Domain=example.com",
    ] {
        assert!(line.contains(attribute), "{attribute} missing in {line}");
    }
    assert!(
        !line.contains("Max-Age"),
        "a browser-session cookie: {line}"
    );
    let second = browser.get("/").await;
    assert_eq!(second.body, "2");
    assert!(
        second.set_cookies.is_empty(),
        "no Set-Cookie once established: {second:?}"
    );
}

#[tokio::test]
async fn two_visitors_do_not_see_each_other() {
    let store = store_with(config()).await;
    let app = app(&store);
    let mut alice = Browser::new(&app);
    let mut bob = Browser::new(&app);
    alice.get("/").await;
    alice.get("/").await;
    assert_eq!(bob.get("/").await.body, "1");
    assert_eq!(alice.get("/").await.body, "3");
    assert_ne!(alice.jar.get("visit"), bob.jar.get("visit"));
    assert_eq!(store.count(), 2);
}

#[tokio::test]
async fn a_read_only_first_visit_creates_nothing() {
    let store = store_with(config()).await;
    let app = app(&store);
    let mut browser = Browser::new(&app);
    let reply = browser.get("/peek").await;
    assert_eq!(
        reply.body, "0 hello None new=true",
        "defaults, with the default function"
    );
    assert!(reply.set_cookies.is_empty(), "{reply:?}");
    // Taking from an empty field writes nothing either.
    let reply = browser.get("/flash").await;
    assert_eq!(reply.body, "None");
    assert!(reply.set_cookies.is_empty(), "{reply:?}");
    assert_eq!(store.count(), 0);
}

#[tokio::test]
async fn destroy_ends_the_session_and_the_old_cookie_is_not_adopted() {
    let store = store_with(config().with_cookie_domain("example.com")).await;
    let app = app(&store);
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    browser.get("/").await;
    let old = browser.jar["visit"].clone();

    let reply = browser.get("/logout").await;
    let removal = reply.cookie_line("visit").expect("a removal cookie");
    assert!(removal.starts_with("visit=;"), "{removal}");
    for attribute in [
        "Max-Age=0",
        "Path=/",
        "Domain=example.com",
        "HttpOnly",
        "SameSite=Lax",
    ] {
        assert!(
            removal.contains(attribute),
            "{attribute} missing in {removal}"
        );
    }
    assert!(!browser.jar.contains_key("visit"));
    assert_eq!(store.count(), 0);

    let replay = get_with_cookie(&app, "/", &format!("visit={old}")).await;
    assert_eq!(replay.body, "1", "a fresh session, not the destroyed one");
    let new = replay
        .cookie("visit")
        .expect("the fresh session gets its own id");
    assert_ne!(new, old);
}

#[tokio::test]
async fn destroy_discards_writes_of_the_same_request() {
    async fn write_then_destroy(session: TypedSession<Visit>) {
        session.set_count(99);
        session.destroy();
    }
    let store = store_with(config()).await;
    let app = Router::new()
        .route("/", get(write_then_destroy))
        .layer(SessionLayer::new(store.clone()));
    let reply = Browser::new(&app).get("/").await;
    assert!(
        reply.set_cookies.is_empty(),
        "a new session destroyed before it existed: {reply:?}"
    );
    assert_eq!(store.count(), 0);
}

#[tokio::test]
async fn renew_changes_the_id_keeps_the_data_and_kills_the_old_id() {
    let store = store_with(config()).await;
    let app = app(&store);
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    browser.get("/").await;
    let old = browser.jar["visit"].clone();
    assert_eq!(
        browser.get("/id").await.body,
        old,
        "id() is the cookie's id"
    );

    let reply = browser.get("/login").await;
    assert_eq!(
        reply.body, old,
        "id() still answers the old id until the response"
    );
    let new = reply
        .cookie("visit")
        .expect("renewal sets the new id")
        .to_owned();
    assert_ne!(new, old);
    assert_eq!(browser.get("/peek").await.body, "2 hello Some(7) new=false");
    assert_eq!(store.count(), 1);

    let replay = get_with_cookie(&app, "/peek", &format!("visit={old}")).await;
    assert_eq!(replay.body, "0 hello None new=true", "the old id is dead");
}

#[tokio::test]
async fn an_unknown_or_malformed_id_is_never_adopted() {
    let store = store_with(config()).await;
    let app = app(&store);
    let chosen = "0123456789abcdef0123456789abcdef";
    let reply = get_with_cookie(&app, "/", &format!("visit={chosen}")).await;
    assert_eq!(reply.body, "1");
    let issued = reply.cookie("visit").unwrap();
    assert_ne!(issued, chosen, "a client-chosen id must not be adopted");

    for garbage in [
        "visit=",
        "visit=../../etc/passwd",
        "visit=0123456789ABCDEF0123456789ABCDEF",
        "visit=+123456789abcdef0123456789abcdef",
        "visit=\"0123456789abcdef0123456789abcdef\"",
        "=; ;;; visit",
        &format!("visit={}", "a".repeat(8192)),
    ] {
        let reply = get_with_cookie(&app, "/", garbage).await;
        assert_eq!(reply.status, StatusCode::OK, "{garbage}");
        assert_eq!(reply.body, "1", "{garbage}");
    }
    let request = Request::get("/")
        .header(
            header::COOKIE,
            HeaderValue::from_bytes(b"visit=\xff\xfe").unwrap(),
        )
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, request).await.body, "1");
}

#[tokio::test]
async fn a_live_id_is_found_among_several_cookies_of_the_same_name() {
    let store = store_with(config()).await;
    let app = app(&store);
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    let live = browser.jar["visit"].clone();
    // A planted cookie for a parent domain arrives first; the live session still wins.
    let cookie = format!("visit=0123456789abcdef0123456789abcdef; other=1; visit={live}");
    let reply = get_with_cookie(&app, "/", &cookie).await;
    assert_eq!(reply.body, "2");
    assert!(reply.set_cookies.is_empty());
}

#[tokio::test]
async fn idle_timeout_ends_a_quiet_session() {
    let store = store_with(config().with_idle_timeout(Duration::from_millis(300))).await;
    let app = app(&store);
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        browser.get("/").await.body,
        "2",
        "activity within the timeout"
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    let reply = browser.get("/").await;
    assert_eq!(reply.body, "1", "idle past the timeout: a fresh session");
    assert!(reply.cookie("visit").is_some(), "with a new id");
}

#[tokio::test]
async fn absolute_timeout_ends_even_an_active_session() {
    let store = store_with(
        config()
            .with_idle_timeout(Duration::from_secs(60))
            .with_absolute_timeout(Duration::from_millis(500)),
    )
    .await;
    let app = app(&store);
    let mut browser = Browser::new(&app);
    let mut last = 0;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(400) {
        last = browser.get("/").await.body.parse::<u64>().unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(last >= 2, "the session lived while young: {last}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        browser.get("/").await.body,
        "1",
        "past the absolute timeout"
    );
}

#[tokio::test]
async fn expires_at_is_the_earlier_timeout() {
    async fn expiry(session: TypedSession<Visit>) -> String {
        let left = session
            .expires_at()
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        left.as_secs().to_string()
    }
    let store = store_with(
        config()
            .with_idle_timeout(Duration::from_secs(600))
            .with_absolute_timeout(Duration::from_secs(3600)),
    )
    .await;
    let app = Router::new()
        .route("/", get(expiry))
        .layer(SessionLayer::new(store));
    let seconds: u64 = Browser::new(&app).get("/").await.body.parse().unwrap();
    assert!((598..=600).contains(&seconds), "{seconds}");
}

/// A store holding `visits` sessions that expire 50 ms after their visit, purged every 20 ms.
async fn store_of_expiring_visits(visits: usize) -> SessionStore<Visit> {
    let store = store_with(
        config()
            .with_idle_timeout(Duration::from_millis(50))
            .with_purge_interval(Duration::from_millis(20)),
    )
    .await;
    let app = app(&store);
    for _ in 0..visits {
        Browser::new(&app).get("/").await;
    }
    assert_eq!(store.count(), visits);
    store
}

#[tokio::test]
async fn scheduled_purges_evict_expired_sessions_without_any_request() {
    let store = store_of_expiring_visits(5).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.count(), 0, "evicted without any request");
}

/// Purges need no timer from the runtime: one built without `enable_time` purges all the same.
#[test]
fn scheduled_purges_run_on_a_runtime_without_timers() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = store_of_expiring_visits(3).await;
        // No Tokio sleep without timers: wait on the clock, letting the runtime run between.
        let start = std::time::Instant::now();
        while store.count() > 0 && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
            tokio::task::yield_now().await;
        }
        assert_eq!(store.count(), 0, "evicted by a scheduled purge");
    });
}

/// Backend calls are bounded with Tokio timers, so a store with a backend on a runtime without
/// them fails its build with a message saying so, rather than panicking in a request.
#[test]
fn a_store_with_a_backend_needs_the_time_driver() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let built = runtime.block_on(
        SessionStore::<Visit>::builder()
            .backend(crate::common::shared_map::SharedMap::default())
            .build(),
    );
    let error = built.expect_err("no time driver").to_string();
    assert!(error.contains("enable_time"), "{error}");
}

#[tokio::test]
async fn memory_only_fields_and_whole_struct_access() {
    let store = store_with(config()).await;
    let app = app(&store);
    let mut browser = Browser::new(&app);
    let reply = browser.send(Method::POST, "/flash").await;
    assert!(
        reply.cookie("visit").is_some(),
        "a memory_only write creates the session"
    );
    assert_eq!(browser.get("/flash").await.body, "Some(\"saved\")");
    assert_eq!(browser.get("/flash").await.body, "None", "taken once");
    assert_eq!(browser.get("/whole").await.body, "10 hi");
    assert_eq!(browser.get("/whole").await.body, "20 hi");
}

#[derive(SessionData)]
struct Cart {
    items: Vec<String>,
}

#[tokio::test]
async fn two_layers_with_two_types_on_one_router() {
    async fn add(visit: TypedSession<Visit>, cart: TypedSession<Cart>) -> String {
        let count = visit.update_count(|count| {
            *count += 1;
            *count
        });
        let items = cart.update_items(|items| {
            items.push(format!("item{count}"));
            items.len()
        });
        format!("{count} {items}")
    }
    async fn clear_cart(cart: TypedSession<Cart>) {
        cart.destroy();
    }
    let visits = store_with(config()).await;
    let carts = SessionStore::<Cart>::builder()
        .config(config())
        .build()
        .await
        .unwrap();
    assert_eq!(carts.cookie_name(), "cart");
    let app = Router::new()
        .route("/", get(add))
        .route("/clear", get(clear_cart))
        .layer(SessionLayer::new(visits.clone()))
        .layer(SessionLayer::new(carts.clone()));
    let mut browser = Browser::new(&app);
    let first = browser.get("/").await;
    assert_eq!(first.body, "1 1");
    assert!(
        first.cookie("visit").is_some() && first.cookie("cart").is_some(),
        "{first:?}"
    );
    assert_ne!(first.cookie("visit"), first.cookie("cart"));
    assert_eq!(browser.get("/").await.body, "2 2");
    browser.get("/clear").await;
    assert!(browser.jar.contains_key("visit") && !browser.jar.contains_key("cart"));
    assert_eq!(
        browser.get("/").await.body,
        "3 1",
        "the cart went, the visit stayed"
    );
    assert_eq!((visits.count(), carts.count()), (1, 1));
}

#[tokio::test]
async fn a_route_without_the_layer_gets_a_500_naming_it() {
    let store = store_with(config()).await;
    let app = Router::new()
        .route("/", get(increment))
        .route_layer(SessionLayer::new(store))
        .route("/late", get(increment));
    assert_eq!(
        Browser::new(&app).get("/").await.body,
        "1",
        "route_layer covers `/`"
    );
    let reply = Browser::new(&app).get("/late").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        reply.body.contains("SessionLayer<suite::memory::Visit>"),
        "{}",
        reply.body
    );
    assert!(
        reply.body.contains(".layer(SessionLayer::new(store))"),
        "{}",
        reply.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_increments_on_one_session_are_never_lost() {
    let store = store_with(config()).await;
    let app = app(&store);
    let mut browser = Browser::new(&app);
    assert_eq!(browser.get("/peek").await.body, "0 hello None new=true");
    browser.send(Method::POST, "/flash").await; // creates the session, count still 0
    let cookie = format!("visit={}", browser.jar["visit"]);

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let app = app.clone();
            let cookie = cookie.clone();
            tokio::spawn(async move {
                for _ in 0..20 {
                    let reply = get_with_cookie(&app, "/", &cookie).await;
                    assert_eq!(reply.status, StatusCode::OK);
                    assert!(reply.set_cookies.is_empty());
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        get_with_cookie(&app, "/peek", &cookie).await.body,
        "1000 hello None new=false"
    );
}

#[tokio::test]
async fn build_rejects_a_bad_config_with_a_message_that_says_what_to_change() {
    let error = SessionStore::<Visit>::builder()
        .config(SessionConfig::default().with_cookie_name("bad name"))
        .build()
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("bad name") && message.contains("with_cookie_name"),
        "{message}"
    );
}

#[tokio::test]
async fn a_memory_capacity_bounds_the_sessions_held() {
    let store = store_with(config().with_memory_capacity(10)).await;
    let app = app(&store);
    let mut first = Browser::new(&app);
    first.get("/").await;
    // Recency is kept in milliseconds: make the first visitor strictly the oldest.
    tokio::time::sleep(Duration::from_millis(5)).await;
    for _ in 0..30 {
        Browser::new(&app).get("/").await;
    }
    // The store's purge thread sweeps, not the request that crossed the bound.
    for _ in 0..200 {
        if store.count() <= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(store.count() <= 10, "{} sessions held", store.count());
    assert_eq!(
        first.get("/").await.body,
        "1",
        "the least recently used was evicted"
    );
}

/// A handler that runs longer than the idle timeout keeps its session and its write: the
/// session is in use while it runs, and the idle clock restarts with the write.
#[tokio::test]
async fn a_write_from_a_handler_longer_than_the_idle_timeout_is_kept() {
    async fn slow_increment(session: TypedSession<Visit>) {
        tokio::time::sleep(Duration::from_millis(900)).await;
        session.update_count(|count| *count += 1);
    }
    let store = store_with(
        config()
            .with_idle_timeout(Duration::from_millis(600))
            .with_purge_interval(Duration::from_millis(50)),
    )
    .await;
    let app = with_route(app(&store), &store, "/slow", slow_increment);
    let mut browser = Browser::new(&app);
    assert_eq!(browser.get("/").await.body, "1");
    let reply = browser.get("/slow").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(
        browser.get("/peek").await.body.starts_with("2 "),
        "the write is kept"
    );
}

/// A write racing a log-out of its session gets 409 and a removal cookie, not a 200 over a
/// write that went nowhere.
#[tokio::test]
async fn a_write_racing_a_logout_is_refused() {
    use std::sync::Arc;
    use tokio::sync::Notify;

    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let slow = {
        let (entered, release) = (Arc::clone(&entered), Arc::clone(&release));
        move |session: TypedSession<Visit>| async move {
            entered.notify_one();
            release.notified().await;
            session.update_count(|count| *count += 1);
        }
    };
    let store = store_with(config()).await;
    let app = with_route(app(&store), &store, "/slow", slow);
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    let cookie = format!("visit={}", browser.jar["visit"]);
    let writing = tokio::spawn({
        let (app, cookie) = (app.clone(), cookie.clone());
        async move { get_with_cookie(&app, "/slow", &cookie).await }
    });
    entered.notified().await;
    browser.get("/logout").await;
    release.notify_one();
    let reply = writing.await.unwrap();
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
    assert!(reply.cookie_line("visit").unwrap().contains("Max-Age=0"));
    assert_eq!(store.count(), 0, "never brought back");
}

/// A "remember me" cookie's Max-Age slides on a memory-only store as it does with a backend:
/// re-sent at most once per touch interval.
#[tokio::test]
async fn a_remember_me_cookie_slides_on_a_memory_store() {
    async fn remember(session: TypedSession<Visit>) {
        session.set_long_term(true);
    }
    let store = store_with(config().with_touch_interval(Duration::from_millis(1000))).await;
    let app = with_route(app(&store), &store, "/remember", remember);
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    let line = browser.get("/remember").await;
    assert!(line.cookie_line("visit").unwrap().contains("Max-Age="));
    let soon = browser.get("/peek").await;
    assert!(
        soon.set_cookies.is_empty(),
        "not on every request: {soon:?}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = browser.get("/peek").await;
    let line = later
        .cookie_line("visit")
        .expect("re-sent after the touch interval");
    assert!(line.contains("Max-Age=2592000"), "{line}");
}

/// Sessions per user and the admin API on the memory store, which walks its own sessions.
mod per_user {
    use typed_session::backend::NullBackend;

    #[tokio::test]
    async fn lists_and_log_outs() {
        crate::e2e::lists_and_log_outs_work_on(NullBackend).await;
    }

    #[tokio::test]
    async fn the_cap_ends_the_oldest() {
        crate::e2e::cap_holds_on(NullBackend).await;
    }

    #[tokio::test]
    async fn the_admin_api() {
        crate::e2e::admin_api_works_on(NullBackend).await;
    }
}
