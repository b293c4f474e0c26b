use typed_session::SessionData;

#[derive(SessionData)]
struct Visit {
    #[session]
    count: u64,
    #[session = "x"]
    total: u64,
}

fn main() {}
