use typed_session::{SessionData, TypedSession};

#[derive(SessionData)]
struct Visit {
    count: u64,
}

fn take(session: &TypedSession<Visit>) {
    let _ = session.take_count();
}

fn main() {}
