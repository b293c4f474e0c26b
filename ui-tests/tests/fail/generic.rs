use typed_session::SessionData;

#[derive(SessionData)]
struct Visit<T> {
    value: T,
}

fn main() {}
