use typed_session::SessionData;

#[derive(SessionData)]
struct Visit {
    #[session(default = "1 + 1")]
    count: u64,
}

fn main() {}
