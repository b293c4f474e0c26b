//! Running an example as its own process, for the tests that drive it over real HTTP.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};

/// Kills the example when the test ends, pass or fail. Holds its stdout open meanwhile, so that
/// what it prints after its first line does not meet a closed pipe.
pub(crate) struct Running {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cargo test` builds the examples next to the test binaries: `target/<profile>/examples/`.
fn example_binary(name: &str) -> PathBuf {
    let test_binary = std::env::current_exe().unwrap();
    let profile_dir = test_binary.parent().unwrap().parent().unwrap();
    let binary = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(binary.exists(), "{} not built", binary.display());
    binary
}

/// Starts the example on a free loopback port and waits for its `listening on` line; returns
/// it and its address.
pub(crate) fn start_example(name: &str, args: &[&str], envs: &[(&str, &str)]) -> (Running, String) {
    let mut child = Command::new(example_binary(name))
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .envs(envs.iter().copied())
        .env("ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut running = Running {
        child,
        stdout: BufReader::new(stdout),
    };
    let mut line = String::new();
    running.stdout.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    assert!(!addr.ends_with(":0"), "the actual port is printed: {addr}");
    (running, addr)
}
