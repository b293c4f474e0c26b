use typed_session::SessionData;

struct Connection;

#[derive(SessionData)]
struct Visit {
    count: u64,
    connection: Option<Connection>,
}

fn main() {}
