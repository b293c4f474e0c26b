use typed_session::{SessionData, TypedSession};

// The user's own type already has the default handle name.
#[allow(dead_code)]
struct VisitSession;

#[derive(SessionData)]
#[session(handle = "VisitAccessors")]
struct Visit {
    count: u64,
}

fn count(session: &TypedSession<Visit>) -> u64 {
    let accessors: &VisitAccessors = session;
    accessors.count()
}

fn main() {
    let _ = count;
}
