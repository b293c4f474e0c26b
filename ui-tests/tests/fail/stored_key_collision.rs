use typed_session::SessionData;

#[derive(SessionData)]
struct Visit {
    user: u64,
    #[session(rename = "user")]
    account: u64,
}

fn main() {}
