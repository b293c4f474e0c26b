use typed_session::serde_json::{Map, Value};
use typed_session::{SessionData, TypedSession};

fn zero() -> u32 {
    0
}

fn upgrade(fields: &mut Map<String, Value>, from: u32) -> Result<(), String> {
    if from < 3 {
        fields.remove("legacy");
    }
    Ok(())
}

#[derive(SessionData)]
#[session(version = 3, migrate = "upgrade", handle = "EverythingHandle", crate = "typed_session")]
struct Everything {
    #[session(default = "zero")]
    count: u32,
    #[session(memory_only)]
    csrf: Option<String>,
    #[session(flash)]
    notice: Option<String>,
    #[session(rename = "uid", alias = "user", alias = "user_id", renew_on_change)]
    account: Option<u64>,
    #[session(encrypt)]
    email: Option<String>,
    #[session(encrypt, flash)]
    secret_notice: Option<String>,
}

fn use_it(session: &TypedSession<Everything>) {
    let _: u32 = session.count();
    let _: Option<String> = session.notice(); // flash: reading takes it
    session.set_notice(Some("saved".to_owned()));
    let _: Option<u64> = session.account();
    let _: Option<String> = session.take_csrf();
    let _: &EverythingHandle = session;
    session.set_account(Some(1)); // renews the id if it changed
    session.update(|everything| everything.email = None);
    let _: Option<String> = session.secret_notice();
}

fn main() {
    let _ = use_it;
}
