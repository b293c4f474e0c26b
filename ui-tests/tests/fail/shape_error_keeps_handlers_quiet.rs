//! An enum is rejected with one error; the fallback keeps a handler naming
//! `TypedSession<Visit>` from adding more.

use typed_session::{SessionData, TypedSession};

#[derive(SessionData)]
enum Visit {
    Anonymous,
    User(u64),
}

async fn handler(session: TypedSession<Visit>) -> String {
    session.read(|_| ());
    session.id().to_string()
}

fn main() {
    let _ = handler;
}
