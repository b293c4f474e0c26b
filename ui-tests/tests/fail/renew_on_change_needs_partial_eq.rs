use typed_session::SessionData;

#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
struct Role(String);

#[derive(SessionData)]
struct Visit {
    #[session(renew_on_change)]
    role: Role,
}

fn main() {}
