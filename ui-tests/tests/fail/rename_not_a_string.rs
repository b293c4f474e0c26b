use typed_session::SessionData;

#[derive(SessionData)]
struct Visit {
    #[session(rename = visits)]
    count: u64,
}

fn main() {}
