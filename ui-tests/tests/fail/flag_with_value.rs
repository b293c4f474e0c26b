use typed_session::SessionData;

#[derive(SessionData)]
struct Visit {
    #[session(memory_only = true)]
    csrf: Option<String>,
}

fn main() {}
