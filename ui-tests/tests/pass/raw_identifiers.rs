use typed_session::{SessionData, TypedSession};

#[derive(SessionData)]
struct Visit {
    r#type: String,
    r#ref: Option<u8>,
}

fn touch(session: &TypedSession<Visit>) -> String {
    session.set_type("a".to_owned());
    session.update_type(|t| t.push('b'));
    let _ = session.take_ref();
    session.r#type()
}

fn main() {
    let _ = touch;
}
