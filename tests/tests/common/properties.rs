//! Running property tests (proptest) whose every case drives async code: a `Router`, a store,
//! a database.
//!
//! The `proptest!` macro builds its inputs per case but nothing else, while these tests set up
//! servers and stores once and send each case through them; so they call proptest's runner
//! themselves, with [`check`].

use std::fmt::Debug;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// How many cases a property runs: `PROPTEST_CASES` when set (the long run in CONTRIBUTING.md
/// sets it to a million), else `default_cases`, chosen per test so that the whole
/// property suite stays within about a minute of CI. Shrinking is bounded, since a case that
/// talks to a database server costs milliseconds and a failure should still report soon.
pub fn config(default_cases: u32) -> Config {
    // `Config::default()` reads every `PROPTEST_*` variable; only the count has a default here.
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    if std::env::var_os("PROPTEST_MAX_SHRINK_ITERS").is_none() {
        config.max_shrink_iters = 2048;
    }
    // Regression files are written beside a crate's `lib.rs`, which an integration test does
    // not have: the failure report (with the minimal input) is what a failing run leaves.
    config.failure_persistence = None;
    config
}

/// Runs `property` on inputs from `strategy` and panics with proptest's report (the minimal
/// failing input, after shrinking) if one fails or panics.
#[track_caller]
pub fn check<S>(
    config: Config,
    strategy: S,
    property: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: Debug,
{
    let mut runner = TestRunner::new(config);
    if let Err(failure) = runner.run(&strategy, property) {
        panic!("{failure}");
    }
}

/// A runtime for one test's cases: one thread, like the `#[tokio::test]` default; every case
/// runs on it with `block_on`.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
