use std::rc::Rc;
use typed_session::SessionData;

#[derive(SessionData)]
struct Visit {
    shared: Rc<String>,
}

fn main() {}
