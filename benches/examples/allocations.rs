//! Heap allocations per request of every contender on every workload, counted with dhat.
//!
//! `cargo run --profile measure -p benches --example allocations`

#[path = "../harness/mod.rs"]
mod harness;

use harness::{Bench, Contender, Workload};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

const REQUESTS: u64 = 2000;

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    println!("| contender | hot | fresh | read-only |");
    println!("|---|---|---|---|");
    for contender in Contender::ALL {
        let counts: Vec<String> = Workload::ALL
            .iter()
            .map(|&workload| {
                let per_request = runtime.block_on(allocations_per_request(contender, workload));
                format!("{per_request:.1}")
            })
            .collect();
        println!("| {contender} | {} |", counts.join(" | "));
    }
}

async fn allocations_per_request(contender: Contender, workload: Workload) -> f64 {
    let mut bench = Bench::new(contender, workload, 1000).await;
    for _ in 0..200 {
        bench.request().await;
    }
    let before = dhat::HeapStats::get().total_blocks;
    for _ in 0..REQUESTS {
        bench.request().await;
    }
    let after = dhat::HeapStats::get().total_blocks;
    (after - before) as f64 / REQUESTS as f64
}
