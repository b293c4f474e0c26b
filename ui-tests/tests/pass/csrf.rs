use typed_session::{CsrfError, CsrfProtected, CsrfSecret, SessionData, TypedSession};

#[derive(SessionData)]
struct Account {
    #[session(renew_on_change)]
    user: Option<String>,
    #[session(csrf, rename = "xsrf")]
    csrf: CsrfSecret,
}

fn protected<T: CsrfProtected>() {}

async fn form(session: TypedSession<Account>) -> Result<String, CsrfError> {
    let token = session.csrf_token();
    session.verify_csrf(&token)?;
    Ok(token)
}

fn main() {
    protected::<Account>();
    let _ = form;
}
