//! Requests per second over real TCP on loopback: one role serves a contender with
//! `axum::serve`, the other loads it with keep-alive HTTP/1.1 connections. `benches/over_tcp.sh`
//! runs both, pinned to one core each, for every contender in alternating rounds, and turns the
//! figures into each session layer's own cost per request (its time per request minus raw
//! axum's).
//!
//! ```sh
//! over_tcp serve typed-session                 # prints `listening on http://<addr>/`
//! over_tcp load 127.0.0.1:4000 hot 5 64        # prints the requests per second
//! ```

#[path = "../harness/mod.rs"]
mod harness;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Request, header};
use harness::{Contender, Workload, check};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// Unmeasured time at the start of a load, for connections and sessions to settle.
const WARM_UP: Duration = Duration::from_secs(1);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: over_tcp serve <contender> | over_tcp load <addr> <workload> <seconds> <connections>";
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match args.first().map(String::as_str) {
        Some("serve") => {
            let contender = args.get(1).and_then(|name| Contender::parse(name));
            runtime.block_on(serve(contender.expect(usage)));
        }
        Some("load") => {
            let addr = args.get(1).expect(usage).clone();
            let workload = args.get(2).and_then(|name| Workload::parse(name));
            let number = |index: usize| -> u64 {
                args.get(index)
                    .and_then(|text| text.parse().ok())
                    .expect(usage)
            };
            let rate = runtime.block_on(load(addr, workload.expect(usage), number(3), number(4)));
            println!("{rate:.0}");
        }
        _ => panic!("{usage}"),
    }
}

async fn serve(contender: Contender) {
    check(contender)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let app = contender.router().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    println!(
        "listening on http://{}/",
        listener.local_addr().expect("bound")
    );
    axum::serve(listener, app).await.expect("serving");
}

/// Requests per second over `seconds`, after the warm-up, from `connections` clients.
async fn load(addr: String, workload: Workload, seconds: u64, connections: u64) -> f64 {
    let counting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..connections)
        .map(|_| {
            let client = Client {
                addr: addr.clone(),
                workload,
                counting: Arc::clone(&counting),
                stop: Arc::clone(&stop),
                answered: Arc::clone(&answered),
            };
            tokio::spawn(client.run())
        })
        .collect();
    tokio::time::sleep(WARM_UP).await;
    counting.store(true, Ordering::Release);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let total = answered.load(Ordering::Acquire);
    stop.store(true, Ordering::Release);
    for client in clients {
        client.await.expect("a client ran");
    }
    total as f64 / seconds as f64
}

/// One keep-alive connection, sending the workload's requests one after another.
struct Client {
    addr: String,
    workload: Workload,
    counting: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
}

impl Client {
    async fn run(self) {
        let stream = TcpStream::connect(&self.addr).await.expect("the server");
        stream.set_nodelay(true).expect("nodelay");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("a handshake");
        tokio::spawn(connection);
        // The hot and read-only workloads use this connection's own session from here on.
        let mut cookie: Option<HeaderValue> = None;
        if self.workload != Workload::Fresh {
            let response = sender
                .send_request(request("/count", None))
                .await
                .expect("an answer");
            cookie = response
                .headers()
                .get(header::SET_COOKIE)
                .and_then(|value| {
                    HeaderValue::from_str(value.to_str().ok()?.split(';').next()?).ok()
                });
            response.into_body().collect().await.expect("a body");
        }
        let path = match self.workload {
            Workload::ReadOnly => "/read",
            Workload::Hot | Workload::Fresh => "/count",
        };
        while !self.stop.load(Ordering::Acquire) {
            let response = sender
                .send_request(request(path, cookie.clone()))
                .await
                .expect("an answer");
            let ok = response.status().is_success();
            response.into_body().collect().await.expect("a body");
            assert!(ok, "the contender failed a request");
            if self.counting.load(Ordering::Relaxed) {
                self.answered.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn request(path: &str, cookie: Option<HeaderValue>) -> Request<Body> {
    let mut request = Request::get(path).header(header::HOST, "127.0.0.1");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.body(Body::empty()).expect("a valid request")
}
