use typed_session::SessionData;

#[derive(SessionData)]
#[session(cookie = "sid")]
struct Visit {
    count: u64,
}

fn main() {}
