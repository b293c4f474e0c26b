use typed_session::SessionData;

#[derive(SessionData)]
struct Visit(u64, String);

fn main() {}
