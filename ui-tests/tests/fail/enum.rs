use typed_session::SessionData;

#[derive(SessionData)]
enum Visit {
    Anonymous,
    User(u64),
}

fn main() {}
