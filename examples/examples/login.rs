//! A complete sign-in: the way to start a real application with typed-session.
//!
//! ```sh
//! cargo run -p examples --example login
//! # then open http://127.0.0.1:3000/ and sign in as alice / alice-password or bob / bob-password
//! ```
//!
//! What it shows, each in a few lines of its handlers:
//!
//! - passwords checked against argon2 hashes (never kept in the session), with the same work
//!   for unknown user names, so the answer time does not tell which names exist;
//! - the session id renewed at sign-in (`#[session(renew_on_change)]` on the user field), so an
//!   id planted before it is worthless after it;
//! - "remember me": a persistent cookie (`set_long_term(true)`), else a browser-session cookie;
//! - one-time messages after a redirect (`#[session(flash)]`): "Welcome, alice", "Wrong username
//!   or password";
//! - a CSRF token in every form (`#[session(csrf)]`): a POST without the right one gets 403 and
//!   changes nothing;
//! - a "devices" page listing the user's sessions (`#[session(index)]`, `sessions_of`), with a
//!   button that signs out every other device (`destroy_sessions_of`).
//!
//! Sessions are stored as in the `counter` example: SQLite in `login-sessions.db` by default,
//! `--memory` for memory only, `DATABASE_URL` (`sqlite://`, `postgres://`, `mysql://`) or
//! `REDIS_URL` for another store. `ADDR` sets the listen address (default `127.0.0.1:3000`).
//! `SESSION_KEY` (32 bytes or more) signs the ids and encrypts the CSRF secret; without it a key
//! is generated at start, and sessions do not survive a restart. Cookies are `HttpOnly` and
//! `SameSite=Lax`; `SECURE_COOKIES=1` marks them `Secure`, for a deployment behind TLS (plain
//! HTTP on loopback is the default, where a `Secure` cookie would not come back).

use std::io::Write as _;
use std::sync::Arc;
use std::time::SystemTime;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::header::USER_AGENT;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use examples::storage::Storage;
use serde::Deserialize;
use typed_session::{
    CsrfSecret, Key, KeyError, SameSite, SessionConfig, SessionData, SessionLayer, SessionStore,
    TypedSession,
};

/// The demo accounts: user name and password.
const ACCOUNTS: [(&str, &str); 2] = [("alice", "alice-password"), ("bob", "bob-password")];

/// The longest User-Agent kept for the devices page: the header is the client's to choose.
const MAX_USER_AGENT: usize = 200;

#[derive(SessionData)]
pub(crate) struct Login {
    /// Who is signed in. A change (sign-in) renews the session id; the index lists a user's
    /// sessions on the devices page.
    #[session(index, renew_on_change)]
    pub(crate) user: Option<String>,
    /// Shown once on `/`.
    #[session(flash)]
    notice: Option<String>,
    /// Shown once on `/login`.
    #[session(flash)]
    alert: Option<String>,
    /// The browser that signed in, to tell the devices apart.
    user_agent: Option<String>,
    #[session(csrf)]
    csrf: CsrfSecret,
}

/// The argon2 hashes of the accounts' passwords (PHC strings), and one that belongs to no one.
pub(crate) struct Accounts {
    hashes: Vec<(String, String)>,
    /// Verified against for an unknown user name, so that it costs as much as a known one.
    dummy: String,
}

impl Accounts {
    /// Hashes the demo passwords with fresh random salts (a real application reads the PHC
    /// strings from its user table).
    pub(crate) fn demo() -> Result<Self, argon2::password_hash::Error> {
        let hashes = ACCOUNTS
            .iter()
            .map(|(user, password)| Ok(((*user).to_owned(), hash(password)?)))
            .collect::<Result<_, argon2::password_hash::Error>>()?;
        Ok(Self {
            hashes,
            dummy: hash("no one has this password")?,
        })
    }

    /// Whether `password` is `user`'s. Slow on purpose (argon2): call it off the async threads.
    fn verify(&self, user: &str, password: &str) -> bool {
        let (known, phc) = match self.hashes.iter().find(|(name, _)| name == user) {
            Some((_, phc)) => (true, phc),
            None => (false, &self.dummy),
        };
        let matches = PasswordHash::new(phc).is_ok_and(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        });
        known && matches
    }
}

fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

#[derive(Clone)]
struct App {
    store: SessionStore<Login>,
    accounts: Arc<Accounts>,
}

/// Every POST carries `csrf_token`. A body that is not a form, or lacks a field, reads as the
/// defaults, so it fails the CSRF check (403) instead of being refused with another status.
#[derive(Deserialize, Default)]
#[serde(default)]
struct CsrfForm {
    csrf_token: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginForm {
    csrf_token: String,
    username: String,
    password: String,
    remember: Option<String>,
}

fn or_default<F: Default>(form: Result<Form<F>, FormRejection>) -> F {
    form.map(|Form(form)| form).unwrap_or_default()
}

/// `GET /`: who is signed in, or a link to sign in.
async fn home(session: TypedSession<Login>) -> Html<String> {
    let notice = notice_html(session.notice());
    let body = match session.user() {
        Some(user) => format!(
            "{notice}<p>Signed in as {user}.</p>\n\
             <p><a href=\"/devices\">Your devices</a></p>\n\
             <form method=\"post\" action=\"/logout\">{csrf}\
             <button type=\"submit\">Sign out</button></form>\n",
            user = escape(&user),
            csrf = csrf_field(&session),
        ),
        None => format!("{notice}<p>You are not signed in. <a href=\"/login\">Sign in</a></p>\n"),
    };
    page("Home", &body)
}

/// `GET /login`: the sign-in form. Its CSRF token creates the session (a write).
async fn login_form(session: TypedSession<Login>) -> Html<String> {
    let alert = notice_html(session.alert());
    let body = format!(
        "{alert}<form method=\"post\" action=\"/login\">{csrf}\n\
         <p><label>Username <input name=\"username\" autocomplete=\"username\"></label></p>\n\
         <p><label>Password <input type=\"password\" name=\"password\" \
         autocomplete=\"current-password\"></label></p>\n\
         <p><label><input type=\"checkbox\" name=\"remember\" value=\"1\"> Remember me</label></p>\n\
         <p><button type=\"submit\">Sign in</button></p>\n</form>\n",
        csrf = csrf_field(&session),
    );
    page("Sign in", &body)
}

/// `POST /login`: checks the password; on success the session gets the user (and a new id).
async fn login(
    State(app): State<App>,
    session: TypedSession<Login>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let form = or_default(form);
    if let Err(refused) = session.verify_csrf(&form.csrf_token) {
        return refused.into_response();
    }
    let accounts = Arc::clone(&app.accounts);
    let user = form.username;
    let checked = user.clone();
    let password = form.password;
    // argon2 takes tens of milliseconds of CPU by design: not on the threads serving requests.
    let valid = tokio::task::spawn_blocking(move || accounts.verify(&checked, &password))
        .await
        .unwrap_or(false);
    if !valid {
        session.set_alert(Some("Wrong username or password".to_owned()));
        return Redirect::to("/login").into_response();
    }
    let user_agent = headers
        .get(USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .map(|agent| agent.chars().take(MAX_USER_AGENT).collect());
    session.set_notice(Some(format!("Welcome, {user}")));
    session.set_user(Some(user));
    session.set_user_agent(user_agent);
    session.set_long_term(form.remember.is_some());
    Redirect::to("/").into_response()
}

/// `POST /logout`: ends the session here and everywhere.
async fn logout(
    session: TypedSession<Login>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    if let Err(refused) = session.verify_csrf(&or_default(form).csrf_token) {
        return refused.into_response();
    }
    session.destroy();
    Redirect::to("/").into_response()
}

/// `GET /devices`: the user's sessions, this one marked.
async fn devices(State(app): State<App>, session: TypedSession<Login>) -> Response {
    let Some(user) = session.user() else {
        return Redirect::to("/login").into_response();
    };
    let sessions = match app.store.sessions_of(&user).await {
        Ok(sessions) => sessions,
        Err(error) => return unavailable(&error),
    };
    let this = session.handle();
    let now = SystemTime::now();
    let mut items = String::new();
    for info in &sessions {
        let agent = info.data.user_agent.as_deref().unwrap_or("unknown browser");
        let mut marks = Vec::new();
        if info.handle == this {
            marks.push("this device");
        }
        if info.long_term {
            marks.push("remembered");
        }
        let marks = if marks.is_empty() {
            String::new()
        } else {
            format!(" <strong>({})</strong>", marks.join(", "))
        };
        items.push_str(&format!(
            "<li class=\"device\">{agent}{marks}<br>signed in {created}, last active {active}</li>\n",
            agent = escape(agent),
            created = ago(now, info.created_at),
            active = ago(now, info.last_active_at),
        ));
    }
    let body = format!(
        "<p>Signed in as {user}. <a href=\"/\">Home</a></p>\n\
         <h2>Your devices</h2>\n<ul>\n{items}</ul>\n\
         <form method=\"post\" action=\"/devices/logout-others\">{csrf}\
         <button type=\"submit\">Log out other devices</button></form>\n",
        user = escape(&user),
        csrf = csrf_field(&session),
    );
    page("Devices", &body).into_response()
}

/// `POST /devices/logout-others`: ends every session of the user but this one.
async fn logout_others(
    State(app): State<App>,
    session: TypedSession<Login>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    if let Err(refused) = session.verify_csrf(&or_default(form).csrf_token) {
        return refused.into_response();
    }
    let Some(user) = session.user() else {
        return Redirect::to("/login").into_response();
    };
    if let Err(error) = app
        .store
        .destroy_sessions_of(&user, Some(&session.handle()))
        .await
    {
        return unavailable(&error);
    }
    Redirect::to("/devices").into_response()
}

fn unavailable(error: &dyn std::error::Error) -> Response {
    eprintln!("session store: {error}");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "The session store is unavailable; try again.\n",
    )
        .into_response()
}

/// The hidden field every form carries.
fn csrf_field(session: &TypedSession<Login>) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf_token\" value=\"{}\">",
        escape(&session.csrf_token())
    )
}

fn notice_html(notice: Option<String>) -> String {
    notice.map_or_else(String::new, |notice| {
        format!(
            "<p class=\"notice\" role=\"status\">{}</p>\n",
            escape(&notice)
        )
    })
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
         <title>{title} - typed-session</title></head>\n<body>\n<h1>{title}</h1>\n{body}</body>\n\
         </html>\n"
    ))
}

/// Text made safe for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// "just now", "5 minutes ago", …: no date library needed.
fn ago(now: SystemTime, then: SystemTime) -> String {
    let seconds = now.duration_since(then).unwrap_or_default().as_secs();
    match seconds {
        0..10 => "just now".to_owned(),
        10..120 => format!("{seconds} seconds ago"),
        120..7200 => format!("{} minutes ago", seconds / 60),
        7200..172_800 => format!("{} hours ago", seconds / 3600),
        _ => format!("{} days ago", seconds / 86_400),
    }
}

/// The application: its routes behind the session layer of `store`. (The tests build it
/// in-process too, with the `testing` kit.)
pub(crate) fn router(store: SessionStore<Login>, accounts: Accounts) -> Router {
    let app = App {
        store: store.clone(),
        accounts: Arc::new(accounts),
    };
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/devices", get(devices))
        .route("/devices/logout-others", post(logout_others))
        .with_state(app)
        .layer(SessionLayer::new(store))
}

/// The key from `SESSION_KEY`, else a new one (with a warning: it dies with the process).
fn session_key() -> Result<Key, KeyError> {
    match std::env::var_os("SESSION_KEY") {
        Some(secret) => Key::from_secret(secret.as_encoded_bytes()),
        None => {
            eprintln!(
                "warning: SESSION_KEY is not set; using a key generated for this run, so sessions \
                 will not survive a restart (set SESSION_KEY to 32 or more random bytes)"
            );
            Ok(Key::generate())
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    examples::init_logging();

    let key = session_key().map_err(|error| format!("SESSION_KEY: {error}"))?;
    let secure = std::env::var("SECURE_COOKIES").is_ok_and(|value| value == "1");
    let config = SessionConfig::default()
        .with_key(key)
        .with_secure(secure)
        .with_http_only(true)
        .with_same_site(SameSite::Lax);
    let storage = Storage::from_env("login-sessions.db")?;
    let store = storage.build::<Login>(config).await?;
    let accounts = tokio::task::spawn_blocking(Accounts::demo)
        .await?
        .map_err(|error| format!("hashing the demo passwords: {error}"))?;
    let router = router(store, accounts);

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|error| format!("cannot listen on {addr}: {error}"))?;
    // Written, not `println!`: a closed stdout must not stop the server.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "listening on http://{}/", listener.local_addr()?);
    for (user, password) in ACCOUNTS {
        let _ = writeln!(stdout, "demo account: {user} / {password}");
    }
    let _ = stdout.flush();
    drop(stdout);
    eprintln!("sessions: {}", storage.describe());
    examples::serve_until_interrupted(listener, router).await?;
    Ok(())
}
