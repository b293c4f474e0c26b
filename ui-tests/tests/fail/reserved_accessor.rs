use typed_session::SessionData;

#[derive(SessionData)]
struct Account {
    id: u64,
    read: bool,
    store: bool,
    clone: Option<String>,
    verify: bool,
}

fn main() {}
