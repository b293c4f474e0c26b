use typed_session::SessionData;

#[derive(SessionData)]
struct Visit {
    #[session(memory_only, encrypt)]
    csrf: Option<String>,
}

fn main() {}
