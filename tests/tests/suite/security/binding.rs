//! Client binding: a value replayed from another browser (User-Agent) or another address (the
//! socket peer, or the address trusted proxies report) gives a fresh session.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use typed_session::ClientIp;

use crate::common::{Reply, StatusCode, send};

use super::support::*;

#[tokio::test]
async fn user_agent_binding_rejects_a_cookie_replayed_from_another_browser() {
    let config = signed(key_a()).with_user_agent_binding(true);
    let app = visit_app(&memory_store(config).await);
    let first = get_with(&app, "/", None, &[("user-agent", FIREFOX)]).await;
    let value = first.cookie("visit").unwrap().to_owned();
    let cookie = format!("visit={value}");
    let as_victim = [("user-agent", FIREFOX)];
    assert_eq!(
        get_with(&app, "/", Some(&cookie), &as_victim).await.body,
        "2"
    );

    let reply = get_with(&app, "/", Some(&cookie), &[("user-agent", CURL)]).await;
    assert_fresh(&reply, "visit", &value);
    let reply = get_with(&app, "/", Some(&cookie), &[]).await;
    assert_fresh(&reply, "visit", &value);
    assert_eq!(
        get_with(&app, "/", Some(&cookie), &as_victim).await.body,
        "3",
        "the victim's session is untouched"
    );
}

#[tokio::test]
async fn ip_binding_behind_a_proxy_rejects_another_client_address() {
    // One trusted proxy appends the client's address to `X-Forwarded-For`.
    let config = signed(key_a())
        .with_ip_binding(true)
        .with_client_ip(ClientIp::XForwardedFor(1));
    let app = visit_app(&memory_store(config).await);
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    let first = get_with(&app, "/", None, &from("203.0.113.7")).await;
    let value = first.cookie("visit").unwrap().to_owned();
    let cookie = format!("visit={value}");
    assert_eq!(
        get_with(&app, "/", Some(&cookie), &from("203.0.113.7"))
            .await
            .body,
        "2"
    );

    let reply = get_with(&app, "/", Some(&cookie), &from("198.51.100.9")).await;
    assert_fresh(&reply, "visit", &value);
    // The attacker writes the victim's address into the header itself; the proxy appends the
    // attacker's real address, which is the one that counts.
    let spoofed = [("x-forwarded-for", "203.0.113.7, 198.51.100.9")];
    let reply = get_with(&app, "/", Some(&cookie), &spoofed).await;
    assert_fresh(&reply, "visit", &value);
    assert_eq!(
        get_with(&app, "/", Some(&cookie), &from("203.0.113.7"))
            .await
            .body,
        "3"
    );
}

/// The most common proxy set-up (nginx's `$proxy_add_x_forwarded_for`, cloud load balancers)
/// appends the client's address to `X-Forwarded-For` and passes every other request header
/// through untouched. A client that adds its own `Forwarded` header must not get to choose its
/// address with it.
#[tokio::test]
async fn ip_binding_behind_an_x_forwarded_for_proxy_ignores_a_client_written_forwarded_header() {
    let config = signed(key_a())
        .with_ip_binding(true)
        .with_client_ip(ClientIp::XForwardedFor(1));
    let app = visit_app(&memory_store(config).await);
    let first = get_with(&app, "/", None, &[("x-forwarded-for", "203.0.113.7")]).await;
    let value = first.cookie("visit").unwrap().to_owned();
    let cookie = format!("visit={value}");

    // The attacker (198.51.100.9, as the proxy reports) replays the stolen cookie and writes
    // the victim's address into a header the proxy does not manage.
    let attack = [
        ("forwarded", "for=203.0.113.7"),
        ("x-forwarded-for", "198.51.100.9"),
    ];
    let reply = get_with(&app, "/", Some(&cookie), &attack).await;
    assert_fresh(&reply, "visit", &value);
}

/// A proxy that only sets `X-Real-IP` (`proxy_set_header X-Real-IP $remote_addr;`, the header
/// `ClientIp::XRealIp` names) passes a client's own `X-Forwarded-For` through:
/// that header must not override the address the proxy reported.
#[tokio::test]
async fn ip_binding_behind_an_x_real_ip_proxy_ignores_a_client_written_x_forwarded_for() {
    let config = signed(key_a())
        .with_ip_binding(true)
        .with_client_ip(ClientIp::XRealIp);
    let app = visit_app(&memory_store(config).await);
    let first = get_with(&app, "/", None, &[("x-real-ip", "203.0.113.7")]).await;
    let value = first.cookie("visit").unwrap().to_owned();
    let cookie = format!("visit={value}");
    let reply = get_with(&app, "/", Some(&cookie), &[("x-real-ip", "203.0.113.7")]).await;
    assert_eq!(reply.body, "2", "the victim keeps the session");

    let attack = [
        ("x-forwarded-for", "203.0.113.7"),
        ("x-real-ip", "198.51.100.9"),
    ];
    let reply = get_with(&app, "/", Some(&cookie), &attack).await;
    assert_fresh(&reply, "visit", &value);
}

/// IP binding that cannot find the client's address refuses instead of binding to "no
/// address" (which let a cookie work from anywhere): an app served without `ConnectInfo`, or a
/// proxy header that is missing or lists fewer addresses than the proxies configured. A 500
/// that names the fix, no cookie; a visitor who needs no session is not refused.
#[tokio::test]
async fn ip_binding_refuses_requests_whose_address_it_cannot_tell() {
    let peer = visit_app(&memory_store(signed(key_a()).with_ip_binding(true)).await);
    let refused = |reply: &Reply| {
        assert_eq!(
            reply.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{}",
            reply.body
        );
        assert!(reply.body.contains("binding"), "{}", reply.body);
        assert_no_set_cookie(reply);
    };
    // Served by plain `axum::serve(listener, app)`: no peer address in the request.
    refused(&get_with(&peer, "/", None, &[]).await);
    let reading = get_with(&peer, "/peek", None, &[]).await;
    assert_eq!(
        reading.status,
        StatusCode::OK,
        "nothing to bind: {}",
        reading.body
    );
    let with_peer = request("/", None, &[])
        .extension(ConnectInfo(
            "192.0.2.10:50000".parse::<SocketAddr>().unwrap(),
        ))
        .body(Body::empty())
        .unwrap();
    let value = send(&peer, with_peer)
        .await
        .cookie("visit")
        .unwrap()
        .to_owned();
    refused(&get_with(&peer, "/peek", Some(&format!("visit={value}")), &[]).await);

    for (source, headers) in [
        (ClientIp::XForwardedFor(1), vec![]),
        (
            ClientIp::XForwardedFor(2),
            vec![("x-forwarded-for", "203.0.113.7")],
        ),
        (
            ClientIp::Forwarded(1),
            vec![("x-forwarded-for", "203.0.113.7")],
        ),
        (ClientIp::XRealIp, vec![]),
    ] {
        let config = signed(key_a()).with_ip_binding(true).with_client_ip(source);
        let app = visit_app(&memory_store(config).await);
        refused(&get_with(&app, "/", None, &headers).await);
    }
}

#[tokio::test]
async fn ip_binding_on_the_socket_peer_rejects_another_client_address() {
    let config = signed(key_a()).with_ip_binding(true);
    let app = visit_app(&memory_store(config).await);
    let from = |peer: &str, cookie: Option<&str>, headers: &[(&str, &str)]| {
        let peer: SocketAddr = peer.parse().unwrap();
        request("/", cookie, headers)
            .extension(ConnectInfo(peer))
            .body(Body::empty())
            .unwrap()
    };
    let first = send(&app, from("192.0.2.10:50000", None, &[])).await;
    let value = first.cookie("visit").unwrap().to_owned();
    let cookie = format!("visit={value}");
    let reply = send(&app, from("192.0.2.10:50001", Some(&cookie), &[])).await;
    assert_eq!(
        reply.body, "2",
        "another port of the same address is the same client"
    );

    let reply = send(&app, from("192.0.2.99:50000", Some(&cookie), &[])).await;
    assert_fresh(&reply, "visit", &value);
    // Without trusted proxies, forwarding headers are the client's own words: ignored.
    let spoofed = [
        ("x-forwarded-for", "192.0.2.10"),
        ("x-real-ip", "192.0.2.10"),
    ];
    let reply = send(&app, from("192.0.2.99:50000", Some(&cookie), &spoofed)).await;
    assert_fresh(&reply, "visit", &value);
    let reply = send(&app, from("[2001:db8::1]:443", Some(&cookie), &[])).await;
    assert_fresh(&reply, "visit", &value);
    let reply = send(&app, from("192.0.2.10:50002", Some(&cookie), &[])).await;
    assert_eq!(reply.body, "3");
}
