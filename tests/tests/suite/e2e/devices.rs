//! Sessions per user and the store's admin API, on every backend: the `#[session(index)]`
//! field lists a user's sessions on every server, follows log-in, log-out and user switches,
//! and ends them by handle, "everywhere else" or past a cap; sessions are read, counted and
//! destroyed by id from outside a request, and cleared all at once.

use std::num::NonZeroUsize;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use typed_session::backend::SessionBackend;
use typed_session::{SessionData, SessionLayer, SessionStore, TypedSession};

use super::{Fixture, config};
use crate::common::{Browser, StatusCode};

#[derive(SessionData)]
pub struct Login {
    #[session(index, renew_on_change)]
    user_id: Option<u64>,
    device: Option<String>,
    visits: u64,
}

async fn log_in(session: TypedSession<Login>, Path((user, device)): Path<(u64, String)>) {
    session.set_user_id(Some(user));
    session.set_device(Some(device));
}

async fn log_out(session: TypedSession<Login>) {
    session.set_user_id(None);
}

/// `<user or -> <handle> <id> <visits>`, counting this visit.
async fn me(session: TypedSession<Login>) -> String {
    let visits = session.update_visits(|visits| {
        *visits += 1;
        *visits
    });
    let user = session
        .user_id()
        .map_or_else(|| "-".to_owned(), |user| user.to_string());
    format!("{user} {} {} {visits}", session.handle(), session.id())
}

/// `<ended count>`: ends every other session of the signed-in user.
async fn log_out_others(
    State(store): State<SessionStore<Login>>,
    session: TypedSession<Login>,
) -> Result<String, StatusCode> {
    let user = session.user_id().ok_or(StatusCode::FORBIDDEN)?;
    let ended = store
        .destroy_sessions_of(&user, Some(&session.handle()))
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    Ok(ended.to_string())
}

pub fn login_app(store: &SessionStore<Login>) -> Router {
    login_app_with(store, Router::new())
}

/// [`login_app`] with `extra` routes inside its session layer.
fn login_app_with(store: &SessionStore<Login>, extra: Router<SessionStore<Login>>) -> Router {
    extra
        .route("/login/{user}/{device}", get(log_in))
        .route("/logout", get(log_out))
        .route("/me", get(me))
        .route("/logout-others", get(log_out_others))
        .with_state(store.clone())
        .layer(SessionLayer::new(store.clone()))
}

async fn login_store<B: SessionBackend>(backend: B, cap: Option<usize>) -> SessionStore<Login> {
    let builder = SessionStore::<Login>::builder()
        .backend(backend)
        .config(config());
    let builder = match cap.and_then(NonZeroUsize::new) {
        Some(cap) => builder.max_sessions_per_index(cap),
        None => builder,
    };
    builder.build().await.expect("a store")
}

/// What `/me` answers, split: user, handle, id, visits.
struct Me {
    user: String,
    handle: String,
    id: String,
    visits: u64,
}

async fn me_of(browser: &mut Browser) -> Me {
    let reply = browser.get("/me").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let parts: Vec<&str> = reply.body.split(' ').collect();
    Me {
        user: parts[0].to_owned(),
        handle: parts[1].to_owned(),
        id: parts[2].to_owned(),
        visits: parts[3].parse().expect("a count"),
    }
}

/// The listed handles and devices of `user`, oldest first.
async fn devices(store: &SessionStore<Login>, user: u64) -> Vec<(String, Option<String>)> {
    store
        .sessions_of(&user)
        .await
        .expect("a list")
        .into_iter()
        .map(|info| (info.handle.to_string(), info.data.device))
        .collect()
}

/// A new browser signed in as `user`, created a few milliseconds after any before it, so that
/// lists (oldest first) have one order.
async fn signed_in(app: &Router, user: u64, device: &str) -> (Browser, Me) {
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    let mut browser = Browser::new(app);
    let reply = browser.get(&format!("/login/{user}/{device}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let me = me_of(&mut browser).await;
    assert_eq!(me.user, user.to_string());
    (browser, me)
}

/// The list follows log-in, a user switch and log-out, and is the same from every server.
pub async fn a_users_sessions_are_listed_on_every_server<F: Fixture>(fixture: &F) {
    let (one, two) = (
        login_store(fixture.backend(), None).await,
        login_store(fixture.backend(), None).await,
    );
    let (app_one, app_two) = (login_app(&one), login_app(&two));
    let (mut laptop, laptop_me) = signed_in(&app_one, 1, "laptop").await;
    let (_phone, phone_me) = signed_in(&app_two, 1, "phone").await;
    let (mut tablet, tablet_me) = signed_in(&app_two, 2, "tablet").await;

    let expected = vec![
        (laptop_me.handle.clone(), Some("laptop".to_owned())),
        (phone_me.handle.clone(), Some("phone".to_owned())),
    ];
    assert_eq!(devices(&one, 1).await, expected, "from the first server");
    assert_eq!(devices(&two, 1).await, expected, "from the second server");
    assert_eq!(devices(&one, 2).await.len(), 1);
    assert!(devices(&one, 3).await.is_empty());

    // The laptop was last saved moments ago: its last activity is now, to the second.
    let info = one.sessions_of(&1).await.expect("a list");
    let now = std::time::SystemTime::now();
    let since = now
        .duration_since(info[0].last_active_at)
        .unwrap_or_default();
    assert!(
        since < std::time::Duration::from_secs(2),
        "active {since:?} ago"
    );
    assert!(info[0].created_at <= info[0].last_active_at);
    assert!(info[0].expires_at > now + std::time::Duration::from_secs(3600));
    assert!(!info[0].long_term);

    // Switching user moves the session (under a new handle: the id renews on change); it keeps
    // its creation time, so it lists before the tablet.
    let reply = laptop.get("/login/2/laptop").await;
    assert_eq!(reply.status, StatusCode::OK);
    let switched = me_of(&mut laptop).await;
    assert_ne!(switched.handle, laptop_me.handle, "renewed on change");
    assert_eq!(
        devices(&two, 1).await,
        vec![(phone_me.handle.clone(), Some("phone".to_owned()))]
    );
    let users_two: Vec<String> = devices(&two, 2).await.into_iter().map(|d| d.0).collect();
    assert_eq!(users_two, vec![switched.handle, tablet_me.handle.clone()]);

    // Logging out takes the session out of every list.
    assert_eq!(tablet.get("/logout").await.status, StatusCode::OK);
    assert_eq!(me_of(&mut tablet).await.user, "-");
    assert_eq!(devices(&one, 2).await.len(), 1, "only the laptop is left");
}

/// On one server (the memory store, given a `NullBackend`): the list follows log-in, a switch
/// and log-out, and logging out other devices ends them.
pub async fn lists_and_log_outs_work_on<B: SessionBackend>(backend: B) {
    let store = login_store(backend, None).await;
    let app = login_app(&store);
    let (mut laptop, laptop_me) = signed_in(&app, 1, "laptop").await;
    let (mut phone, phone_me) = signed_in(&app, 1, "phone").await;
    let (mut tablet, _) = signed_in(&app, 2, "tablet").await;
    assert_eq!(
        devices(&store, 1).await,
        vec![
            (laptop_me.handle.clone(), Some("laptop".to_owned())),
            (phone_me.handle, Some("phone".to_owned())),
        ]
    );
    assert_eq!(tablet.get("/logout").await.status, StatusCode::OK);
    assert!(devices(&store, 2).await.is_empty());
    assert_eq!(laptop.get("/logout-others").await.body, "1");
    assert_eq!(me_of(&mut phone).await.user, "-");
    assert_eq!(me_of(&mut laptop).await.user, "1");
    assert_eq!(devices(&store, 1).await.len(), 1);
}

/// "Log out my other devices": the other sessions of the user end, on this server at once and
/// on a server that has not cached them; the current one and other users' stay.
pub async fn logging_out_other_devices_ends_them_everywhere<F: Fixture>(fixture: &F) {
    let one = login_store(fixture.backend(), None).await;
    let app_one = login_app(&one);
    let (mut laptop, laptop_me) = signed_in(&app_one, 1, "laptop").await;
    let (mut phone, _) = signed_in(&app_one, 1, "phone").await;
    let (mut tablet, _) = signed_in(&app_one, 1, "tablet").await;
    let (mut other_user, _) = signed_in(&app_one, 2, "desktop").await;

    let reply = laptop.get("/logout-others").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body, "2");
    assert_eq!(
        devices(&one, 1).await,
        vec![(laptop_me.handle.clone(), Some("laptop".to_owned()))]
    );
    // Cached on this server: refused at once.
    assert_eq!(me_of(&mut phone).await.user, "-", "the phone is signed out");
    // A server that never saw the tablet finds no session either.
    let two = login_store(fixture.backend(), None).await;
    let mut tablet_elsewhere = tablet.on(&login_app(&two));
    assert_eq!(me_of(&mut tablet_elsewhere).await.user, "-");
    assert_eq!(me_of(&mut tablet).await.user, "-");
    // The current session and the other user's are untouched.
    let laptop_again = me_of(&mut laptop).await;
    assert_eq!(
        (laptop_again.user.as_str(), laptop_again.handle),
        ("1", laptop_me.handle)
    );
    assert_eq!(me_of(&mut other_user).await.user, "2");
}

/// `max_sessions_per_index`: a log-in past the cap ends the user's oldest session.
pub async fn a_log_in_past_the_cap_ends_the_oldest_session<F: Fixture>(fixture: &F) {
    cap_holds_on(fixture.backend()).await;
}

/// [`a_log_in_past_the_cap_ends_the_oldest_session`] on `backend` (the memory store, given a
/// `NullBackend`).
pub async fn cap_holds_on<B: SessionBackend>(backend: B) {
    let store = login_store(backend, Some(2)).await;
    let app = login_app(&store);
    let (mut first, _) = signed_in(&app, 1, "first").await;
    let (mut second, _) = signed_in(&app, 1, "second").await;
    assert_eq!(devices(&store, 1).await.len(), 2);
    let (mut third, _) = signed_in(&app, 1, "third").await;
    let left: Vec<_> = devices(&store, 1).await.into_iter().map(|d| d.1).collect();
    assert_eq!(
        left,
        vec![Some("second".to_owned()), Some("third".to_owned())]
    );
    assert_eq!(me_of(&mut first).await.user, "-", "the oldest was ended");
    assert_eq!(me_of(&mut second).await.user, "1");
    assert_eq!(me_of(&mut third).await.user, "1");
}

/// Reading, counting and destroying by id from outside a request, and clearing everything.
pub async fn the_admin_api_reads_counts_destroys_and_clears<F: Fixture>(fixture: &F) {
    admin_api_works_on(fixture.backend()).await;
}

/// [`the_admin_api_reads_counts_destroys_and_clears`] on `backend` (the memory store, given a
/// `NullBackend`).
pub async fn admin_api_works_on<B: SessionBackend>(backend: B) {
    let store = login_store(backend, None).await;
    let app = login_app(&store);
    let (mut alice, _) = signed_in(&app, 1, "laptop").await;
    let (mut bob, _) = signed_in(&app, 2, "phone").await;
    let alice_me = me_of(&mut alice).await;
    let id = alice_me.id.parse().expect("an id");

    let read = store
        .read_session(id, |login| (login.user_id, login.visits))
        .await
        .expect("a read");
    assert_eq!(read, Some((Some(1), alice_me.visits)));
    assert_eq!(store.count_stored().await.expect("a count"), 2);

    store.destroy_id(id).await.expect("destroyed");
    assert_eq!(store.read_session(id, |_| ()).await.expect("a read"), None);
    assert_eq!(me_of(&mut alice).await.user, "-", "alice is signed out");
    assert_eq!(me_of(&mut bob).await.user, "2", "bob is not");

    // Alice's new anonymous session, then bob's, then nothing.
    assert_eq!(store.count_stored().await.expect("a count"), 2);
    store.clear_all().await.expect("cleared");
    assert_eq!(store.count_stored().await.expect("a count"), 0);
    assert_eq!(me_of(&mut bob).await.user, "-", "bob is signed out");
    assert!(devices(&store, 2).await.is_empty());
}

/// A handler that outlives its response (a stream) stores its later writes with `save_now`,
/// and `verify` tells it when the session was ended elsewhere.
pub async fn a_handler_saves_after_its_response_and_verifies<F: Fixture>(fixture: &F) {
    let (sender, mut streams) = tokio::sync::mpsc::unbounded_channel::<TypedSession<Login>>();
    let store = login_store(fixture.backend(), None).await;
    let stream = Router::new().route(
        "/stream",
        get(move |session: TypedSession<Login>| async move {
            sender.send(session).expect("the test listens");
        }),
    );
    let app = login_app_with(&store, stream);
    let (mut browser, me) = signed_in(&app, 1, "laptop").await;
    let id = me.id.parse().expect("an id");
    assert_eq!(browser.get("/stream").await.status, StatusCode::OK);
    let stream = streams.recv().await.expect("the handler's session");

    // After the response: written and saved by the stream, read back from storage.
    stream.update_visits(|visits| *visits += 100);
    stream.save_now().await.expect("saved");
    let other_server = login_store(fixture.backend(), None).await;
    let stored = other_server.read_session(id, |login| login.visits).await;
    assert_eq!(stored.expect("a read"), Some(me.visits + 100));
    assert!(stream.verify().await.expect("verified"), "still live");

    // Ended by another server: the stream learns it, and its writes are refused.
    other_server.destroy_id(id).await.expect("destroyed");
    assert!(!stream.verify().await.expect("verified"), "ended elsewhere");
    stream.update_visits(|visits| *visits += 1);
    let refused = stream
        .save_now()
        .await
        .expect_err("a write to an ended session");
    assert!(refused.is_ended(), "{refused}");
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert_eq!(me_of(&mut browser).await.user, "-");
}
