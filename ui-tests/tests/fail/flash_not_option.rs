use typed_session::SessionData;

#[derive(SessionData)]
struct Visit {
    #[session(flash)]
    notice: String,
}

fn main() {}
