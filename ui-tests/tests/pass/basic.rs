use typed_session::{SessionData, TypedSession};

fn guest() -> String {
    "guest".to_owned()
}

#[derive(SessionData)]
pub struct Visit {
    count: u64,
    #[session(default = "guest")]
    name: String,
    #[session(memory_only)]
    csrf: Option<String>,
    #[session(rename = "uid", default = "Default::default")]
    user_id: Option<u64>,
    tags: Vec<String>,
}

async fn handler(session: TypedSession<Visit>) -> String {
    let count: u64 = session.update_count(|c| {
        *c += 1;
        *c
    });
    session.set_name("ada".to_owned());
    let _: Option<String> = session.take_csrf();
    let _: Option<u64> = session.take_user_id();
    session.set_tags(vec![]);
    let total = session.read(|visit| visit.count + visit.tags.len() as u64);
    session.update(|visit| visit.user_id = Some(total));
    let _ = (session.id(), session.is_new(), session.expires_at());
    session.renew();
    session.destroy();
    format!("{count} {}", session.name())
}

fn main() {
    let _ = handler;
}
