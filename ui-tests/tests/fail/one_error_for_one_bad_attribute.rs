//! A struct with one bad attribute gives exactly one error: the derive's fallback keeps the
//! handlers that use the struct, and every accessor they call, free of errors of their own.

use typed_session::{SessionData, TypedSession};

#[derive(SessionData)]
struct Visit {
    count: u64,
    #[session(encrypted)]
    email: Option<String>,
    #[session(flash)]
    notice: Option<String>,
}

async fn count(session: TypedSession<Visit>) -> String {
    let count = session.update_count(|count| {
        *count += 1;
        *count
    });
    session.set_email(Some("a@example.com".to_owned()));
    format!("{count} {:?}", session.notice())
}

async fn logout(session: TypedSession<Visit>) -> Option<String> {
    session.destroy();
    session.update(|visit| visit.count = 0);
    session.read(|visit| visit.email.clone()).or(session.take_email())
}

fn main() {
    let _ = (count, logout);
}
