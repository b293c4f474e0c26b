use typed_session::SessionData;

fn start() -> String {
    String::new()
}

#[derive(SessionData)]
struct Visit {
    #[session(default = "start")]
    count: u64,
}

fn main() {}
