//! The login example's handlers tested in-process with the `testing` kit: a session is seeded
//! as "alice is signed in" (no form, no argon2), requests go through `oneshot`, and each
//! response's effect on the session is read back from the store.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;
use typed_session::testing::{SessionCookie, SessionOutcome, SessionTester};
use typed_session::{Key, SessionConfig, SessionStore};

#[path = "../../examples/login.rs"]
#[allow(dead_code)]
mod app;

use app::{Accounts, Login};

async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    session: &SessionCookie,
    form: &str,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let (name, value) = session.request_header();
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(name, value)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    (
        parts.status,
        parts.headers,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn a_seeded_user_sees_her_pages_is_refused_without_a_token_and_signs_out() {
    let store = SessionStore::<Login>::builder()
        .config(SessionConfig::default().with_key(Key::generate()))
        .build()
        .await
        .unwrap();
    let accounts = tokio::task::spawn_blocking(Accounts::demo)
        .await
        .unwrap()
        .unwrap();
    let router = app::router(store.clone(), accounts);
    let tester = SessionTester::new(&store);
    let (token_out, token_in) = std::sync::mpsc::channel();
    let alice = tester
        .seed_with(move |session| {
            session.set_user(Some("alice".into()));
            token_out.send(session.csrf_token()).unwrap();
        })
        .await
        .unwrap();
    let token = token_in.recv().unwrap();

    let (status, headers, body) = call(&router, "GET", "/", &alice, "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Signed in as alice"), "{body}");
    assert_eq!(
        tester.outcome(Some(&alice), &headers),
        SessionOutcome::Unchanged
    );

    let (_, _, body) = call(&router, "GET", "/devices", &alice, "").await;
    assert_eq!(body.matches("this device").count(), 1, "{body}");

    let (status, headers, _) = call(&router, "POST", "/logout", &alice, "csrf_token=forged").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        tester.outcome(Some(&alice), &headers),
        SessionOutcome::Unchanged
    );
    let user = tester
        .read(&alice, |login| login.user.clone())
        .await
        .unwrap();
    assert_eq!(
        user,
        Some(Some("alice".to_owned())),
        "a refused POST changes nothing"
    );

    let form = format!("csrf_token={token}");
    let (status, headers, _) = call(&router, "POST", "/logout", &alice, &form).await;
    assert!(status.is_redirection(), "{status}");
    assert_eq!(
        tester.outcome(Some(&alice), &headers),
        SessionOutcome::Destroyed
    );
    assert_eq!(
        tester
            .read(&alice, |login| login.user.clone())
            .await
            .unwrap(),
        None
    );
}
