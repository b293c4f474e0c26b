use typed_session::SessionData;

#[derive(SessionData)]
struct Login {
    #[session(index)]
    user_id: Option<u64>,
    #[session(index)]
    email: Option<String>,
    #[session(index, encrypt)]
    secret: Option<String>,
    #[session(index, memory_only)]
    scratch: Option<String>,
    #[session(index, flash)]
    notice: Option<String>,
}

fn main() {}
