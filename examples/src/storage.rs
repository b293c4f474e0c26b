//! Where an example keeps its sessions, chosen the same way by every example that can use any
//! store: `--memory`, `REDIS_URL` or `DATABASE_URL`, else a local SQLite file.

use std::error::Error;

use typed_session::backend::{MySqlBackend, PostgresBackend, RedisBackend, SqliteBackend};
use typed_session::{SessionConfig, SessionData, SessionStore};

/// Where sessions go, from the command line and the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// In this process's memory only: gone when it ends.
    Memory,
    /// A SQLite database (`sqlite://…`), embedded: no server.
    Sqlite(String),
    /// A PostgreSQL server (`postgres://…`).
    Postgres(String),
    /// A MySQL or MariaDB server (`mysql://…`).
    MySql(String),
    /// A Redis server (`redis://…`).
    Redis(String),
}

impl Storage {
    /// `--memory` (or `SESSION_STORE=memory`), else `REDIS_URL`, else `DATABASE_URL`, else
    /// SQLite in the file `default_sqlite_file` of the working directory.
    ///
    /// # Errors
    ///
    /// A `DATABASE_URL` of an unknown scheme.
    pub fn from_env(default_sqlite_file: &str) -> Result<Self, String> {
        let memory = std::env::args().any(|arg| arg == "--memory")
            || std::env::var("SESSION_STORE").is_ok_and(|store| store == "memory");
        if memory {
            return Ok(Self::Memory);
        }
        if let Ok(url) = std::env::var("REDIS_URL") {
            return Ok(Self::Redis(url));
        }
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| format!("sqlite://{default_sqlite_file}?mode=rwc"));
        match url.split_once("://").map(|(scheme, _)| scheme) {
            Some("sqlite") => Ok(Self::Sqlite(url)),
            Some("postgres" | "postgresql") => Ok(Self::Postgres(url)),
            Some("mysql" | "mariadb") => Ok(Self::MySql(url)),
            _ => Err(format!(
                "DATABASE_URL must start with sqlite://, postgres:// or mysql://, not {url:?}"
            )),
        }
    }

    /// What to print at start-up: the store's address, without any password in it.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Memory => "memory only".to_owned(),
            Self::Sqlite(url) | Self::Postgres(url) | Self::MySql(url) | Self::Redis(url) => {
                let visible = url.rsplit_once('@').map_or(url.as_str(), |(_, host)| host);
                visible.to_owned()
            }
        }
    }

    /// Connects to the store and builds a session store on it with `config`.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or the configuration is refused.
    pub async fn build<T: SessionData>(
        &self,
        config: SessionConfig,
    ) -> Result<SessionStore<T>, Box<dyn Error>> {
        let builder = SessionStore::<T>::builder().config(config);
        let store = match self {
            Self::Memory => builder.build().await?,
            Self::Sqlite(url) => {
                builder
                    .backend(SqliteBackend::connect(url).await?)
                    .build()
                    .await?
            }
            Self::Postgres(url) => {
                builder
                    .backend(PostgresBackend::connect(url).await?)
                    .build()
                    .await?
            }
            Self::MySql(url) => {
                builder
                    .backend(MySqlBackend::connect(url).await?)
                    .build()
                    .await?
            }
            Self::Redis(url) => {
                builder
                    .backend(RedisBackend::connect(url).await?)
                    .build()
                    .await?
            }
        };
        Ok(store)
    }
}
