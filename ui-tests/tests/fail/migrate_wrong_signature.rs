use typed_session::SessionData;

fn upgrade(from: u32) -> u32 {
    from
}

#[derive(SessionData)]
#[session(version = 2, migrate = "upgrade")]
struct Visit {
    count: u64,
}

fn main() {}
