use typed_session::SessionData;

#[derive(SessionData)]
struct Visit<'a> {
    name: &'a str,
}

fn main() {}
