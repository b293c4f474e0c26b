//! A yardstick for the Redis rows, not a session library: the least any cookie session layer
//! that writes Redis on every request must do. A cookie holds a random id; `/count` is one round
//! trip (`INCR` and `PEXPIRE` of the id's key in one pipeline) over a multiplexed connection,
//! `/read` one `GET`. No encoding, compare-and-set, signing, expiry check or announcement: its
//! rate is the ceiling of a Redis-backed layer on the machine it runs on.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use redis::aio::MultiplexedConnection;

const COOKIE_NAME: &str = "redis_floor";

/// How long a counter lives: the bench leaves nothing behind for long.
const EXPIRY_MS: i64 = 60_000;

pub async fn router() -> Router {
    let client = redis::Client::open(super::REDIS_URL).expect("a Redis URL");
    let connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("the local Redis (.ci/services)");
    Router::new()
        .route("/count", get(count))
        .route("/read", get(read))
        .with_state(connection)
}

/// The id in the request's cookie, or a new one (with the `Set-Cookie` that hands it out).
fn id_of(headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    let presented = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE_NAME)?.strip_prefix('='));
    match presented {
        Some(id) => (id.to_owned(), None),
        None => {
            let id = uuid::Uuid::new_v4().simple().to_string();
            let cookie = HeaderValue::try_from(format!("{COOKIE_NAME}={id}; HttpOnly; Path=/"))
                .expect("an id is a valid header value");
            (id, Some(cookie))
        }
    }
}

fn respond(body: String, cookie: Option<HeaderValue>) -> Response {
    let mut response = body.into_response();
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

async fn count(State(mut redis): State<MultiplexedConnection>, headers: HeaderMap) -> Response {
    let (id, cookie) = id_of(&headers);
    let key = format!("bench:floor:{id}");
    let (count, _): (u64, bool) = redis::pipe()
        .atomic()
        .incr(&key, 1)
        .pexpire(&key, EXPIRY_MS)
        .query_async(&mut redis)
        .await
        .expect("INCR and PEXPIRE on the local Redis");
    respond(count.to_string(), cookie)
}

async fn read(State(mut redis): State<MultiplexedConnection>, headers: HeaderMap) -> Response {
    let (id, cookie) = id_of(&headers);
    let count: Option<u64> = redis::cmd("GET")
        .arg(format!("bench:floor:{id}"))
        .query_async(&mut redis)
        .await
        .expect("GET on the local Redis");
    respond(count.unwrap_or(0).to_string(), cookie)
}
