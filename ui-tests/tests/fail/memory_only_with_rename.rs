use typed_session::SessionData;

#[derive(SessionData)]
struct Visit {
    #[session(memory_only, rename = "token")]
    csrf: Option<String>,
}

fn main() {}
