//! Runs `<requests>` requests of one contender and workload on a current-thread runtime, for
//! `callgrind.sh` to count instructions: the difference between two request counts cancels the
//! start-up (runtime, store, pool), leaving the cost per request.
//!
//! `cargo run --profile measure -p benches --example per_request -- typed-session hot 1000`
//! (`hmac-verify any 1000` runs the yardstick of the signed target instead.)

#[path = "../harness/mod.rs"]
mod harness;

use harness::{Bench, Contender, Workload, check};

/// The yardstick of the signed target: one HMAC-SHA256 verification done the usual way (keyed
/// per call) over what a signed cookie covers (name, id, no binding).
#[inline(never)]
fn measure_hmac_verifications(count: usize) {
    use hmac::{Hmac, Mac};
    let key = [7_u8; 32];
    let message = b"visit0123456789abcdef0123456789abcdef";
    let tag = {
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).expect("any key length");
        mac.update(message);
        mac.finalize().into_bytes()
    };
    let mut valid = 0;
    for _ in 0..count {
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(std::hint::black_box(&key))
            .expect("any key length");
        mac.update(std::hint::black_box(message));
        valid += usize::from(mac.verify_slice(&tag).is_ok());
    }
    println!("hmac-verify {count} verifications, {valid} valid");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("hmac-verify") {
        let count = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1000);
        measure_hmac_verifications(count);
        return;
    }
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
    let bench = runtime.block_on(async {
        check(contender).await.expect("the contender counts");
        Bench::new(contender, workload, pool).await
    });
    let bytes = measure_requests(&runtime, bench, requests);
    println!(
        "{contender} {} {requests} requests, {bytes} body bytes",
        workload.name()
    );
}

/// The measured part, and the only one `callgrind.sh` counts (`--toggle-collect`): the requests,
/// any task the contender runs meanwhile, and dropping the contender with its sessions at the
/// end. Set-up is left out, so a contender whose set-up differs from run to run (axum_session's
/// check is retried, and its pool keeps only the cookies that work) cannot blur its figure.
#[inline(never)]
fn measure_requests(runtime: &tokio::runtime::Runtime, mut bench: Bench, requests: usize) -> usize {
    runtime.block_on(async move {
        let mut bytes = 0;
        for _ in 0..requests {
            bytes += bench.request().await;
        }
        bytes
    })
}
