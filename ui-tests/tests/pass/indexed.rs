use typed_session::{Indexed, SessionData, SessionStore, TypedSession};

#[derive(SessionData)]
struct Login {
    #[session(index, renew_on_change)]
    user_id: Option<u64>,
}

#[derive(SessionData)]
struct Team {
    #[session(index)]
    team: String,
}

fn looked_up_by<T: Indexed<Index = I>, I: ?Sized>() {}

async fn devices(store: SessionStore<Login>, session: TypedSession<Login>) {
    let user = session.user_id().unwrap_or_default();
    let this = session.handle();
    for device in store.sessions_of(&user).await.unwrap() {
        let _ = (device.handle == this, device.data.user_id);
    }
    let _ = store.destroy_sessions_of(&user, Some(&this)).await;
}

fn main() {
    looked_up_by::<Login, u64>();
    looked_up_by::<Team, String>();
    let _ = devices;
}
