use typed_session::{SessionData, TypedSession};

#[derive(SessionData)]
struct Visit {
    count: u64,
}

async fn form(session: TypedSession<Visit>) -> String {
    session.csrf_token()
}

fn main() {
    let _ = form;
}
