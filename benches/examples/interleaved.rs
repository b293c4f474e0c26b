//! Requests per second of several contenders timed in alternation, so that a change in the
//! machine's speed during the run (these machines are shared) hits all of them alike. Each round
//! times one batch of every contender, in rotating order; the ratios are taken round by round.
//!
//! `cargo run --profile measure -p benches --example interleaved -- hot typed-session
//! tower-sessions` compares the first contender named with each of the others.

#[path = "../harness/mod.rs"]
mod harness;

use std::time::Instant;

use harness::{Bench, Contender, POOL, Workload, check};

const ROUNDS: usize = 41;
const BATCH: usize = 10_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: interleaved <workload> <contender> <contender>...";
    let workload = args
        .first()
        .and_then(|name| Workload::parse(name))
        .expect(usage);
    let contenders: Vec<Contender> = args[1..]
        .iter()
        .map(|name| Contender::parse(name).expect(usage))
        .collect();
    assert!(contenders.len() >= 2, "{usage}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut benches: Vec<Bench> = contenders
        .iter()
        .map(|&contender| {
            runtime.block_on(async {
                check(contender).await.expect("the contender counts");
                Bench::new(contender, workload, POOL).await
            })
        })
        .collect();
    for bench in &mut benches {
        run_batch(&runtime, bench);
    }
    let mut rates = vec![Vec::with_capacity(ROUNDS); benches.len()];
    for round in 0..ROUNDS {
        for turn in 0..benches.len() {
            let index = (round + turn) % benches.len();
            let start = Instant::now();
            run_batch(&runtime, &mut benches[index]);
            rates[index].push(BATCH as f64 / start.elapsed().as_secs_f64());
        }
    }
    println!(
        "{} workload, {ROUNDS} rounds of {BATCH} requests each, pool {POOL}",
        workload.name()
    );
    for (contender, rates) in contenders.iter().zip(&rates) {
        println!(
            "{contender}: median {:.0} k req/s",
            median(rates.clone()) / 1000.0
        );
    }
    for (other, other_rates) in contenders.iter().zip(&rates).skip(1) {
        let ratios: Vec<f64> = rates[0]
            .iter()
            .zip(other_rates)
            .map(|(first, other)| first / other)
            .collect();
        let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let high = ratios.iter().copied().fold(0.0, f64::max);
        println!(
            "{} / {other}: median {:.2}x per round (lowest {low:.2}x, highest {high:.2}x)",
            contenders[0],
            median(ratios)
        );
    }
}

fn run_batch(runtime: &tokio::runtime::Runtime, bench: &mut Bench) {
    runtime.block_on(async {
        for _ in 0..BATCH {
            bench.request().await;
        }
    });
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
