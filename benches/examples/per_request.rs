//! Runs `<requests>` requests of one contender and workload on a current-thread runtime, for
//! `callgrind.sh` to count instructions: the difference between two request counts cancels the
//! start-up (runtime, store, pool), leaving the cost per request.
//!
//! `cargo run --release -p benches --example per_request -- typed-session hot 1000`

#[path = "../harness/mod.rs"]
mod harness;

use harness::{Bench, Contender, Workload, check};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: per_request <contender> <workload> <requests> [pool]";
    let contender = args
        .first()
        .and_then(|name| Contender::parse(name))
        .expect(usage);
    let workload = args
        .get(1)
        .and_then(|name| Workload::parse(name))
        .expect(usage);
    let requests: usize = args.get(2).and_then(|n| n.parse().ok()).expect(usage);
    let pool: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(1000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        check(contender).await.expect("the contender counts");
        let mut bench = Bench::new(contender, workload, pool).await;
        let mut bytes = 0;
        for _ in 0..requests {
            bytes += bench.request().await;
        }
        println!(
            "{contender} {} {requests} requests, {bytes} body bytes",
            workload.name()
        );
    });
}
