use typed_session::SessionData;

#[derive(SessionData)]
struct Visit {
    #[session(rename = "a")]
    #[session(rename = "b")]
    count: u64,
}

fn main() {}
