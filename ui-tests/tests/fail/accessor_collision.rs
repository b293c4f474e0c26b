use typed_session::SessionData;

#[derive(SessionData)]
struct Visit {
    count: u64,
    set_count: bool,
}

fn main() {}
