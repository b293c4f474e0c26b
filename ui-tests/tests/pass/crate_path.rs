// A crate that re-exports typed-session under another name points the derive at it.
mod framework {
    pub use typed_session as sessions;
}

use framework::sessions::{SessionData, TypedSession};

#[derive(SessionData)]
#[session(crate = "framework::sessions")]
struct Visit {
    count: u64,
}

fn count(session: &TypedSession<Visit>) -> u64 {
    session.count()
}

fn main() {
    let _ = count;
}
