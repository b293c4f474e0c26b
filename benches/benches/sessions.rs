//! Requests per second of every contender on every workload, in one run.
//!
//! `cargo bench -p benches` (all), or `cargo bench -p benches -- hot` for one workload.
//! Compare contenders within one run only: these machines are shared and noisy.

#[path = "../harness/mod.rs"]
mod harness;

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use harness::{Bench, Contender, POOL, Workload, check};

fn sessions(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    for contender in Contender::ALL {
        if let Err(problem) = runtime.block_on(check(contender)) {
            panic!("refusing to measure a contender that does not count: {problem}");
        }
    }
    for workload in Workload::ALL {
        let mut group = c.benchmark_group(workload.name());
        group.throughput(Throughput::Elements(1));
        group.measurement_time(Duration::from_secs(3));
        group.warm_up_time(Duration::from_secs(1));
        for contender in Contender::ALL {
            let mut bench = runtime.block_on(Bench::new(contender, workload, POOL));
            group.bench_function(contender.name(), |b| {
                b.iter(|| runtime.block_on(bench.request()));
            });
        }
        group.finish();
    }
}

criterion_group!(benches, sessions);
criterion_main!(benches);
