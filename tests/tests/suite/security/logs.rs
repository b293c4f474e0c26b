//! Secrets in logs: `Debug` output of keys, configurations, stores and sessions holds no key
//! material and no usable id.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use typed_session::{Key, SessionConfig, SessionLayer, SessionStore};

use crate::common::Browser;

use super::support::*;

/// Every spelling of `secret` a careless `Debug` might print.
fn spellings(secret: &[u8]) -> Vec<String> {
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let bytes = format!("{:?}", &secret[..8]);
    vec![
        String::from_utf8_lossy(secret).into_owned(),
        String::from_utf8_lossy(&secret[..12]).into_owned(),
        hex.clone(),
        hex[..24].to_owned(),
        hex.to_uppercase()[..24].to_owned(),
        STANDARD.encode(secret)[..24].to_owned(),
        URL_SAFE_NO_PAD.encode(secret)[..24].to_owned(),
        bytes[1..bytes.len() - 1].to_owned(),
    ]
}

/// Key material of any origin shows up as a long run of hex/base64 characters or a list of
/// byte values; `Debug` output with neither holds no key.
#[track_caller]
fn assert_no_key_material(debug: &str) {
    let longest_run = debug
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '+'))
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(longest_run < 32, "a key-sized token in {debug}");
    let numbers_in_a_row = debug
        .split(|c: char| !(c.is_ascii_digit() || c == ',' || c == ' '))
        .map(|run| run.split(',').filter(|n| !n.trim().is_empty()).count())
        .max()
        .unwrap_or(0);
    assert!(numbers_in_a_row < 8, "a byte list in {debug}");
}

#[tokio::test]
async fn debug_output_of_keys_configs_and_stores_holds_no_key_material() {
    let canary: &[u8] = b"canary-secret-Zq7Kx9Vb2Nm4Lp8Rt6Wy3Hd5Jf1Gs0-end";
    let key = Key::from_secret(canary).unwrap();
    let config = SessionConfig::default()
        .with_key(key.clone())
        .with_previous_keys([Key::from_secret(&canary[1..]).unwrap(), Key::generate()]);
    let store = SessionStore::<Visit>::builder()
        .config(config.clone())
        .build()
        .await
        .unwrap();
    let builder = SessionStore::<Visit>::builder().config(config.clone());
    let layer = SessionLayer::new(store.clone());
    let debugs = [
        format!("{key:?}"),
        format!("{key:#?}"),
        format!("{config:?}"),
        format!("{config:#?}"),
        format!("{store:?}"),
        format!("{:?}", store.config()),
        format!("{builder:?}"),
        format!("{layer:?}"),
    ];
    for debug in &debugs {
        for spelling in spellings(canary) {
            assert!(!debug.contains(&spelling), "{spelling:?} in {debug}");
        }
        assert_no_key_material(debug);
    }
    assert!(
        debugs[0].contains(&format!("{:08x}", key.id())),
        "the key id identifies the key: {}",
        debugs[0]
    );
}

#[tokio::test]
async fn debug_output_of_a_session_holds_no_usable_id() {
    let app = visit_app(&memory_store(signed(key_a())).await);
    let reply = Browser::new(&app).get("/debug").await;
    let (debug, id) = reply.body.split_once('\n').unwrap();
    assert_eq!(id.len(), 32);
    assert!(!debug.contains(id), "the full id in {debug}");
    assert!(!debug.contains(&id[..16]), "half the id in {debug}");
}
