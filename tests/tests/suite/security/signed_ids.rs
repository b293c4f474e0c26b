//! Forged, tampered, respelled, relocated and garbage signed ids, and `Cookie` headers
//! stuffed with them: none is ever adopted, and the real session is found and left alone.

use typed_session::{SessionConfig, SessionId};

use crate::common::{Browser, StatusCode, get_with_cookie};

use super::support::*;

#[tokio::test]
async fn signed_cookie_round_trips_and_carries_a_signature() {
    let app = visit_app(&memory_store(signed(key_a())).await);
    let mut browser = Browser::new(&app);
    let first = browser.get("/").await;
    assert_eq!(first.body, "1");
    let value = first.cookie("visit").unwrap();
    assert_signed(value);
    assert!(
        !value.contains('~'),
        "no consent marker outside OptIn: {value}"
    );
    let line = first.cookie_line("visit").unwrap();
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(line.contains(attribute), "{attribute} missing: {line}");
    }
    for expected in ["2", "3"] {
        let reply = browser.get("/").await;
        assert_eq!(reply.body, expected);
        assert_no_set_cookie(&reply);
    }
}

#[tokio::test]
async fn a_tampered_signature_gives_a_fresh_session_and_leaves_the_real_one_alone() {
    let app = visit_app(&memory_store(signed(key_a())).await);
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    let value = browser.jar["visit"].clone();
    let dot = value.find('.').unwrap();
    for index in [dot + 1, dot + 20, value.len() - 2] {
        let tampered = flip(&value, index);
        let reply = get_with_cookie(&app, "/", &format!("visit={tampered}")).await;
        assert_fresh(&reply, "visit", &tampered);
    }
    assert_eq!(
        browser.get("/").await.body,
        "2",
        "the real session is untouched"
    );
}

/// The last of the 43 characters carries 4 bits of the MAC and 2 unused bits: spelling those
/// differently must not give a second valid value (signatures are canonical).
#[tokio::test]
async fn a_signature_respelled_in_its_unused_bits_is_rejected() {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let app = visit_app(&memory_store(signed(key_a())).await);
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    let value = browser.jar["visit"].clone();
    let last = *value.as_bytes().last().unwrap();
    let index = ALPHABET.iter().position(|&c| c == last).unwrap();
    assert_eq!(
        index & 0b11,
        0,
        "a canonical signature leaves the unused bits zero"
    );
    let mut respelled = value.clone().into_bytes();
    *respelled.last_mut().unwrap() = ALPHABET[index | 0b01];
    let respelled = String::from_utf8(respelled).unwrap();
    let reply = get_with_cookie(&app, "/", &format!("visit={respelled}")).await;
    assert_fresh(&reply, "visit", &respelled);
}

#[tokio::test]
async fn a_signature_moved_onto_another_id_is_rejected() {
    let app = visit_app(&memory_store(signed(key_a())).await);
    let mut victim = Browser::new(&app);
    victim.get("/").await;
    victim.get("/").await;
    let mut attacker = Browser::new(&app);
    attacker.get("/").await;
    // The victim's id (learnt somehow) under the attacker's valid signature.
    let victim_id = &victim.jar["visit"][..32];
    let attacker_signature = &attacker.jar["visit"][32..];
    let forged = format!("{victim_id}{attacker_signature}");
    let reply = get_with_cookie(&app, "/", &format!("visit={forged}")).await;
    assert_fresh(&reply, "visit", &forged);
    assert_eq!(victim.get("/").await.body, "3");
}

#[tokio::test]
async fn an_unsigned_bare_id_is_rejected() {
    let app = visit_app(&memory_store(signed(key_a())).await);
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    let value = browser.jar["visit"].clone();
    let bare = &value[..32];
    let reply = get_with_cookie(&app, "/", &format!("visit={bare}")).await;
    assert_fresh(&reply, "visit", bare);
    // A dot with nothing after it is no signature either.
    let empty_signature = format!("{bare}.");
    let reply = get_with_cookie(&app, "/", &format!("visit={empty_signature}")).await;
    assert_fresh(&reply, "visit", &empty_signature);
    assert_eq!(browser.get("/").await.body, "2");
}

#[tokio::test]
async fn a_value_signed_by_an_unknown_key_is_rejected() {
    // The same id space and cookie name, but another key: a value minted by another
    // deployment (or an attacker's own server) is not ours.
    let ours = visit_app(&memory_store(signed(key_a())).await);
    let theirs = visit_app(&memory_store(signed(stranger_key())).await);
    let mut browser = Browser::new(&ours);
    browser.get("/").await;
    let mut elsewhere = Browser::new(&theirs);
    elsewhere.get("/").await;
    // Their own value, and our live id under their signature: both refused.
    let ours_id = &browser.jar["visit"][..32];
    let their_signature = &elsewhere.jar["visit"][32..];
    for forged in [
        elsewhere.jar["visit"].clone(),
        format!("{ours_id}{their_signature}"),
    ] {
        let reply = get_with_cookie(&ours, "/", &format!("visit={forged}")).await;
        assert_fresh(&reply, "visit", &forged);
    }
}

#[tokio::test]
async fn garbage_values_give_a_fresh_session_and_never_an_error() {
    let app = visit_app(&memory_store(signed(key_a())).await);
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    let id = browser.jar["visit"][..32].to_owned();
    let long = "a".repeat(8192);
    let garbage = [
        String::new(),
        ".".to_owned(),
        "~s".to_owned(),
        format!("{id}~s"),
        format!("{id}.{}", "!".repeat(43)),
        format!("{id}.{}", "A".repeat(44)),
        format!("{id}.{}.{}", "A".repeat(43), "A".repeat(43)),
        format!("{}.{}", id.to_uppercase(), &browser.jar["visit"][33..]),
        format!("{id}{id}"),
        long,
    ];
    for value in garbage {
        let reply = get_with_cookie(&app, "/", &format!("visit={value}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{value}");
        assert_eq!(reply.body, "1", "{value}");
    }
    assert_eq!(browser.get("/").await.body, "2");
}

/// A `Cookie` header stuffed with forged signed values costs a bounded number of signature
/// checks: the real cookie is found behind a few forgeries (cookies of other paths can share
/// its name) but not behind thousands, which are never all verified.
#[tokio::test]
async fn a_header_stuffed_with_forged_ids_is_examined_only_so_far() {
    let config = signed(key_a()).with_user_agent_binding(true);
    let app = visit_app(&memory_store(config).await);
    let as_client = [("user-agent", FIREFOX)];
    let first = get_with(&app, "/", None, &as_client).await;
    let value = first.cookie("visit").unwrap().to_owned();
    let forged = |count: usize| -> String {
        (0..count)
            .map(|i| {
                format!(
                    "visit={}.{}; ",
                    SessionId::generate(),
                    "A".repeat(42) + &(i % 10).to_string()
                )
            })
            .collect()
    };

    // Cookie tossing from a sibling subdomain plants values in front of the real one.
    let behind_planted = format!("{}visit={value}", forged(64));
    let reply = get_with(&app, "/", Some(&behind_planted), &as_client).await;
    assert_eq!(reply.body, "2", "found behind 64 forged values");

    let behind_many = format!("{}visit={value}", forged(5000));
    let reply = get_with(&app, "/", Some(&behind_many), &as_client).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_fresh(&reply, "visit", &value);

    let cookie = format!("visit={value}");
    assert_eq!(
        get_with(&app, "/", Some(&cookie), &as_client).await.body,
        "3",
        "the real session is untouched"
    );
}

/// With a key, a session this server must load (another server created it) is found behind 64
/// planted values too: each forged value fails its signature before it could cost a round trip.
async fn a_stored_session_is_found_behind_64_forged_values(storage: Storage) {
    let config = || signed(key_a()).with_user_agent_binding(true);
    let as_client = [("user-agent", FIREFOX)];
    let first = visit_app(&storage.store(config()).await);
    let value = get_with(&first, "/", None, &as_client)
        .await
        .cookie("visit")
        .unwrap()
        .to_owned();
    let forged: String = (0..64)
        .map(|i| {
            format!(
                "visit={}.{}{}; ",
                SessionId::generate(),
                "A".repeat(42),
                i % 10
            )
        })
        .collect();
    let cold = visit_app(&storage.store(config()).await);
    let cookie = format!("{forged}visit={value}");
    let reply = get_with(&cold, "/", Some(&cookie), &as_client).await;
    assert_eq!(reply.body, "2", "loaded from behind 64 forged values");
}

on_storages!(a_stored_session_is_found_behind_64_forged_values: sqlite, postgres);

/// Without a key planted values are well-formed ids nobody holds: the ids are looked up in
/// memory before anything else, so the real session is found behind 64 of them too.
#[tokio::test]
async fn an_unsigned_session_is_found_behind_64_planted_ids() {
    let app = visit_app(&memory_store(SessionConfig::default().with_secure(false)).await);
    let first = get_with(&app, "/", None, &[]).await;
    let value = first.cookie("visit").unwrap().to_owned();
    let planted: String = (0..64)
        .map(|_| format!("visit={}; ", SessionId::generate()))
        .collect();
    let cookie = format!("{planted}visit={value}");
    let reply = get_with(&app, "/", Some(&cookie), &[]).await;
    assert_eq!(reply.body, "2", "found behind 64 planted ids");
    assert_no_set_cookie(&reply);
}
