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
use typed_session::backend::{MySqlBackend, PostgresBackend, RedisBackend, SqliteBackend};
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

/// Where sessions go, from the command line and the environment.
enum Storage {
    Memory,
    Sqlite(String),
    Postgres(String),
    MySql(String),
    Redis(String),
}

impl Storage {
    fn from_env() -> Result<Self, String> {
        let memory = std::env::args().any(|arg| arg == "--memory")
            || std::env::var("SESSION_STORE").is_ok_and(|store| store == "memory");
        if memory {
            return Ok(Self::Memory);
        }
        if let Ok(url) = std::env::var("REDIS_URL") {
            return Ok(Self::Redis(url));
        }
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "sqlite://counter-sessions.db?mode=rwc".to_owned());
        match url.split_once("://").map(|(scheme, _)| scheme) {
            Some("sqlite") => Ok(Self::Sqlite(url)),
            Some("postgres" | "postgresql") => Ok(Self::Postgres(url)),
            Some("mysql" | "mariadb") => Ok(Self::MySql(url)),
            _ => Err(format!(
                "DATABASE_URL must start with sqlite://, postgres:// or mysql://, not {url:?}"
            )),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Memory => "memory only".to_owned(),
            Self::Sqlite(url) | Self::Postgres(url) | Self::MySql(url) | Self::Redis(url) => {
                // Never print a password from the URL.
                let visible = url.rsplit_once('@').map_or(url.as_str(), |(_, host)| host);
                visible.to_owned()
            }
        }
    }
}

async fn store(storage: &Storage) -> Result<SessionStore<Visit>, Box<dyn std::error::Error>> {
    // Plain HTTP on a local port: a `Secure` cookie would not come back from curl.
    let config = SessionConfig::default().with_secure(false);
    let builder = SessionStore::<Visit>::builder().config(config);
    let store = match storage {
        Storage::Memory => builder.build().await?,
        Storage::Sqlite(url) => {
            builder
                .backend(SqliteBackend::connect(url).await?)
                .build()
                .await?
        }
        Storage::Postgres(url) => {
            builder
                .backend(PostgresBackend::connect(url).await?)
                .build()
                .await?
        }
        Storage::MySql(url) => {
            builder
                .backend(MySqlBackend::connect(url).await?)
                .build()
                .await?
        }
        Storage::Redis(url) => {
            builder
                .backend(RedisBackend::connect(url).await?)
                .build()
                .await?
        }
    };
    Ok(store)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let storage = Storage::from_env()?;
    let store = store(&storage).await?;
    let app = Router::new()
        .route("/", get(count).delete(forget))
        .layer(SessionLayer::new(store));

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|error| format!("cannot listen on {addr}: {error}"))?;
    println!("listening on http://{}/", listener.local_addr()?);
    eprintln!("sessions: {}", storage.describe());
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
