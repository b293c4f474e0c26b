use typed_session::SessionData;

#[derive(SessionData)]
struct Visit {
    #[session(memory_onyl)]
    csrf: Option<String>,
}

fn main() {}
