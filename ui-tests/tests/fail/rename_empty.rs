use typed_session::SessionData;

#[derive(SessionData)]
struct Visit {
    #[session(rename = "")]
    count: u64,
}

fn main() {}
