use typed_session::{SessionData, SessionStore};

#[derive(SessionData)]
struct Visit {
    count: u64,
}

async fn list(store: SessionStore<Visit>) {
    let _ = store.sessions_of(&1).await;
}

fn main() {}
