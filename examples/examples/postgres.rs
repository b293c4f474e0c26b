//! Log-in sessions in PostgreSQL, shared by every server behind a load balancer.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo run -p examples --example postgres
//! curl -c jar -b jar 'http://127.0.0.1:3000/login?user=ada&remember=true'
//! curl -c jar -b jar http://127.0.0.1:3000/me
//! curl -c jar -b jar http://127.0.0.1:3000/logout
//! ```
//!
//! Log-in renews the session id (an id planted before log-in is worthless after it), "remember
//! me" makes the session long-term, log-out deletes it everywhere. `SESSION_TABLE` picks the
//! table (default `typed_sessions`); `ADDR` the listen address.

use axum::extract::Query;
use axum::{Router, routing::get};
use serde::Deserialize;
use typed_session::backend::PostgresBackend;
use typed_session::{SessionConfig, SessionData, SessionLayer, SessionStore, TypedSession};

#[derive(SessionData)]
struct Login {
    user: Option<String>,
    visits: u64,
}

#[derive(Deserialize)]
struct Credentials {
    user: String,
    #[serde(default)]
    remember: bool,
}

async fn login(session: TypedSession<Login>, Query(credentials): Query<Credentials>) -> String {
    // A real application checks a password here.
    session.set_user(Some(credentials.user.clone()));
    session.set_long_term(credentials.remember);
    session.renew();
    format!("welcome, {}\n", credentials.user)
}

async fn me(session: TypedSession<Login>) -> String {
    let visits = session.update_visits(|visits| {
        *visits += 1;
        *visits
    });
    match session.user() {
        Some(user) => format!("{user} (visit {visits})\n"),
        None => format!("anonymous (visit {visits})\n"),
    }
}

async fn logout(session: TypedSession<Login>) -> &'static str {
    session.destroy();
    "bye\n"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let mut backend = PostgresBackend::connect(&url).await?;
    if let Ok(table) = std::env::var("SESSION_TABLE") {
        backend = backend.with_table_name(&table)?;
    }
    let store = SessionStore::<Login>::builder()
        .backend(backend)
        // Plain HTTP on a local port: a `Secure` cookie would not come back from curl.
        .config(SessionConfig::default().with_secure(false))
        .build()
        .await?;
    let app = Router::new()
        .route("/login", get(login))
        .route("/me", get(me))
        .route("/logout", get(logout))
        .layer(SessionLayer::new(store));

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}/", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
