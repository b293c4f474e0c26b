use typed_session::SessionData;

#[derive(SessionData)]
struct Account {
    #[session(csrf)]
    csrf: Option<String>,
}

fn main() {}
