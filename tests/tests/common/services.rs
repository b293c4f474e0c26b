//! The database servers the backend tests use: where they are, whether they are up, and names
//! that no other test shares.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use typed_session::SessionId;
use typed_session::backend::{MongoBackend, SurrealBackend};

/// The PostgreSQL URL to test against, or `None` (after a notice) when the server is down.
pub fn postgres_url() -> Option<String> {
    service_url(
        "PostgreSQL",
        "TYPED_SESSION_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
        5432,
    )
}

/// The MySQL/MariaDB URL to test against, or `None` (after a notice) when the server is down.
pub fn mysql_url() -> Option<String> {
    service_url(
        "MariaDB",
        "TYPED_SESSION_MYSQL_URL",
        "mysql://root@127.0.0.1:3306/test",
        3306,
    )
}

/// The Redis URL to test against, or `None` (after a notice) when the server is down.
pub fn redis_url() -> Option<String> {
    service_url(
        "Redis",
        "TYPED_SESSION_REDIS_URL",
        "redis://127.0.0.1:6379",
        6379,
    )
}

/// The MongoDB URL to test against, or `None` (after a notice) when the server is down. The
/// local server is `nx-27017` (a MongoDB wire-protocol server on SQLite), started by
/// `.ci/services`; the short server selection timeout makes a server that goes away fail a test
/// in seconds rather than the driver's default 30.
pub fn mongodb_url() -> Option<String> {
    service_url(
        "MongoDB",
        "TYPED_SESSION_MONGODB_URL",
        "mongodb://127.0.0.1:27017/typed_session_test?serverSelectionTimeoutMS=5000",
        27017,
    )
}

/// Where the SurrealDB tests run: `TYPED_SESSION_SURREALDB_URL` (a real server, for example
/// `ws://127.0.0.1:8000`, which must accept unauthenticated queries) when set, else the
/// in-process memory engine (`mem://`), which runs the same queries and needs no server.
pub fn surrealdb_url() -> Option<String> {
    match std::env::var("TYPED_SESSION_SURREALDB_URL") {
        Ok(url) if !url.is_empty() => {
            service_url("SurrealDB", "TYPED_SESSION_SURREALDB_URL", &url, 8000)
        }
        _ => Some("mem://".to_owned()),
    }
}

/// A MongoDB backend on the test server with a collection of this test's own (`prefix` and
/// random digits), or `None` as for [`mongodb_url`].
pub async fn mongodb_backend(prefix: &str) -> Option<MongoBackend> {
    let url = mongodb_url()?;
    let backend = MongoBackend::connect(&url)
        .await
        .unwrap()
        .with_collection(&unique_name(prefix))
        .unwrap();
    Some(backend)
}

/// A SurrealDB backend (namespace `typed_session`, database `test`) with a table of this test's
/// own (`prefix` and random digits), or `None` as for [`surrealdb_url`].
pub async fn surrealdb_backend(prefix: &str) -> Option<SurrealBackend> {
    let url = surrealdb_url()?;
    let backend = SurrealBackend::connect(&url, "typed_session", "test")
        .await
        .unwrap()
        .with_table_name(&unique_name(prefix))
        .unwrap();
    Some(backend)
}

/// `prefix` followed by 16 random hex digits: a table name or key prefix of this test's own.
pub fn unique_name(prefix: &str) -> String {
    let random = SessionId::generate().to_string();
    format!("{prefix}{}", &random[..16])
}

/// The URL from `var` (else `default`) if its server accepts a TCP connection; otherwise
/// [`unavailable`].
fn service_url(name: &str, var: &str, default: &str, default_port: u16) -> Option<String> {
    let url = std::env::var(var)
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| default.to_owned());
    if accepts_connections(&url, default_port) {
        return Some(url);
    }
    unavailable(&format!(
        "{name} is not accepting connections at {url} (set {var} to use another server); \
         start the local servers with .ci/services"
    ))
}

/// `None`, after a notice that the calling test skips because of `problem`; or a panic when
/// `TYPED_SESSION_REQUIRE_SERVICES=1` (as in CI), where a skipped test would hide a broken
/// backend.
pub fn unavailable<T>(problem: &str) -> Option<T> {
    if std::env::var("TYPED_SESSION_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("{problem}");
    }
    eprintln!("skipping this test: {problem}");
    None
}

/// Whether the host and port of `url` accept a TCP connection within a short timeout.
fn accepts_connections(url: &str, default_port: u16) -> bool {
    server_addresses(url, default_port)
        .iter()
        .any(|address| TcpStream::connect_timeout(address, Duration::from_millis(500)).is_ok())
}

/// The socket addresses of the `[user@]host[:port]` part of `scheme://authority/path?query`.
fn server_addresses(url: &str, default_port: u16) -> Vec<SocketAddr> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host_port)| host_port);
    let has_port = match host_port.rfind(']') {
        Some(bracket) => host_port[bracket..].contains(':'),
        None => host_port.contains(':'),
    };
    let with_port = if has_port {
        host_port.to_owned()
    } else {
        format!("{host_port}:{default_port}")
    };
    with_port
        .to_socket_addrs()
        .map(Iterator::collect)
        .unwrap_or_default()
}
