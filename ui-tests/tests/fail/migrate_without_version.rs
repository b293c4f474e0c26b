use typed_session::SessionData;

fn upgrade(_: &mut typed_session::serde_json::Map<String, typed_session::serde_json::Value>, _: u32) -> Result<(), String> {
    Ok(())
}

#[derive(SessionData)]
#[session(migrate = "upgrade")]
struct Visit {
    count: u64,
}

fn main() {}
