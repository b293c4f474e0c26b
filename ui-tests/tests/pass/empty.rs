use typed_session::SessionData;

// Nothing to store yet, but the session still has an id and can be renewed or destroyed.
#[derive(SessionData)]
struct Marker {}

fn main() {
    assert_eq!(<Marker as SessionData>::NAME, "marker");
}
