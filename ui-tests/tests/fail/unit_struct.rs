use typed_session::SessionData;

#[derive(SessionData)]
struct Visit;

fn main() {}
