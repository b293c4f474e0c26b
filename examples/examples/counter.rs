//! The README's main example: a per-visitor counter on the in-memory store.
//!
//! ```sh
//! cargo run -p examples --example counter
//! curl -c jar -b jar http://127.0.0.1:3000/   # 1, then 2, 3, …
//! ```
//!
//! `ADDR` sets the listen address (default `127.0.0.1:3000`; `127.0.0.1:0` picks a free port).

use axum::{Router, routing::get};
use typed_session::{SessionConfig, SessionData, SessionLayer, SessionStore, TypedSession};

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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let store = SessionStore::<Visit>::builder()
        // Plain HTTP on a local port: a `Secure` cookie would not come back from curl.
        .config(SessionConfig::default().with_secure(false))
        .build()
        .await?;
    let app = Router::new()
        .route("/", get(count).delete(forget))
        .layer(SessionLayer::new(store));

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|error| format!("cannot listen on {addr}: {error}"))?;
    println!("listening on http://{}/", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            // If the signal handler cannot be installed, serve until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await?;
    Ok(())
}
