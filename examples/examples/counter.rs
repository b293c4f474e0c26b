//! The README's main example: a per-visitor counter that survives restarts.
//!
//! ```sh
//! cargo run -p examples --example counter
//! curl -c jar -b jar http://127.0.0.1:3000/   # 1, then 2, 3, …
//! ```
//!
//! Sessions are stored in SQLite, in `counter-sessions.db` in the working directory (the
//! embedded default: no server needed), so the count survives a restart. Other stores:
//!
//! - `--memory` (or `SESSION_STORE=memory`): memory only, gone when the process ends;
//! - `DATABASE_URL=sqlite://path.db?mode=rwc`, `postgres://…` or `mysql://…`: that database;
//! - `REDIS_URL=redis://127.0.0.1:6379`: Redis.
//!
//! `ADDR` sets the listen address (default `127.0.0.1:3000`; `127.0.0.1:0` picks a free port).

use axum::{Router, routing::get};
use examples::storage::Storage;
use typed_session::{SessionConfig, SessionData, SessionLayer, TypedSession};

#[derive(SessionData)]
struct Visit {
    count: u64,
}

async fn count(session: TypedSession<Visit>) -> String {
    let count = session.update_count(|count| {
        *count += 1;
        *count
    });
    format!("{count}\n")
}

/// `DELETE /` forgets the visitor.
async fn forget(session: TypedSession<Visit>) -> &'static str {
    session.destroy();
    "forgotten\n"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    examples::init_logging();

    let storage = Storage::from_env("counter-sessions.db")?;
    // Plain HTTP on a local port: a `Secure` cookie would not come back from curl.
    let config = SessionConfig::default().with_secure(false);
    let store = storage.build::<Visit>(config).await?;
    let app = Router::new()
        .route("/", get(count).delete(forget))
        .layer(SessionLayer::new(store));

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|error| format!("cannot listen on {addr}: {error}"))?;
    println!("listening on http://{}/", listener.local_addr()?);
    eprintln!("sessions: {}", storage.describe());
    examples::serve_until_interrupted(listener, app).await?;
    Ok(())
}
