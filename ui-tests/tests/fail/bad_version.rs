use typed_session::SessionData;

#[derive(SessionData)]
#[session(version = 0)]
struct Zero {
    count: u64,
}

#[derive(SessionData)]
#[session(version = "2")]
struct Text {
    count: u64,
}

fn main() {}
