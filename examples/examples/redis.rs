//! A shopping cart in Redis: sessions expire by themselves, and every server sees the same cart.
//!
//! ```sh
//! REDIS_URL=redis://127.0.0.1:6379 cargo run -p examples --example redis
//! curl -c jar -b jar 'http://127.0.0.1:3000/add?item=apple'
//! curl -c jar -b jar http://127.0.0.1:3000/cart
//! ```
//!
//! `SESSION_PREFIX` picks the key prefix (default `typed_session:`); `ADDR` the listen address.

use std::time::Duration;

use axum::extract::Query;
use axum::{Router, routing::get};
use serde::Deserialize;
use typed_session::backend::RedisBackend;
use typed_session::{SessionConfig, SessionData, SessionLayer, SessionStore, TypedSession};

#[derive(SessionData)]
struct Cart {
    items: Vec<String>,
    /// Shown once after the next request, then gone.
    notice: Option<String>,
}

#[derive(Deserialize)]
struct Item {
    item: String,
}

async fn add(cart: TypedSession<Cart>, Query(Item { item }): Query<Item>) -> String {
    let count = cart.update_items(|items| {
        items.push(item.clone());
        items.len()
    });
    cart.set_notice(Some(format!("added {item}")));
    format!("{count} item(s)\n")
}

async fn show(cart: TypedSession<Cart>) -> String {
    let notice = cart
        .take_notice()
        .map(|n| format!("({n}) "))
        .unwrap_or_default();
    format!("{notice}{}\n", cart.items().join(", "))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let mut backend = RedisBackend::connect(&url).await?;
    if let Ok(prefix) = std::env::var("SESSION_PREFIX") {
        backend = backend.with_prefix(&prefix)?;
    }
    let store = SessionStore::<Cart>::builder()
        .backend(backend)
        .config(
            SessionConfig::default()
                .with_secure(false)
                .with_idle_timeout(Duration::from_secs(2 * 60 * 60)),
        )
        .build()
        .await?;
    let app = Router::new()
        .route("/add", get(add))
        .route("/cart", get(show))
        .layer(SessionLayer::new(store));

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}/", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
