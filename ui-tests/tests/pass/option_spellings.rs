use typed_session::{SessionData, TypedSession};

#[derive(SessionData)]
struct Flash {
    a: Option<String>,
    b: std::option::Option<u8>,
    c: ::core::option::Option<bool>,
}

fn take_all(session: &TypedSession<Flash>) {
    let _: Option<String> = session.take_a();
    let _: Option<u8> = session.take_b();
    let _: Option<bool> = session.take_c();
}

fn main() {
    let _ = take_all;
}
