use typed_session::SessionData;

#[derive(SessionData)]
#[session(crate = 1)]
struct Visit {
    #[session(encrypted)]
    email: String,
    id: u64,
    #[session(rename = "email")]
    address: String,
}

fn main() {}
