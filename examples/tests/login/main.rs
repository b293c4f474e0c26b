//! The `login` example's contract, run as its own process: over plain HTTP (status codes,
//! cookies, one-time messages, the CSRF refusals) and in real headless Chromium through
//! chromedriver (`browser` below); and in-process with the `testing` kit (`kit`).

mod browser;
#[path = "../common/mod.rs"]
mod common;
mod kit;
// The integration tests' skip-or-fail rule for a missing service (here, the browser).
#[allow(dead_code, unreachable_pub)]
#[path = "../../../tests/tests/common/services.rs"]
mod services;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use common::{Running, start_example};

/// The `login` example on a SQLite file of its own (its default store), removed when dropped.
struct LoginExample {
    _running: Running,
    addr: String,
    db: PathBuf,
}

impl LoginExample {
    fn start() -> Self {
        Self::start_with(&[])
    }

    /// With more environment variables than the store's and the key.
    fn start_with(envs: &[(&str, &str)]) -> Self {
        let db = std::env::temp_dir().join(format!(
            "typed-session-login-{}-{}.db",
            std::process::id(),
            unique()
        ));
        let url = format!("sqlite://{}?mode=rwc", db.display());
        // A key, as in production: ids signed, the CSRF secret encrypted at rest.
        let key = "a test key of the login example, 32 bytes or more";
        let (running, addr) = start_example(
            "login",
            &[],
            &[
                &[("DATABASE_URL", url.as_str()), ("SESSION_KEY", key)],
                envs,
            ]
            .concat(),
        );
        Self {
            _running: running,
            addr,
            db,
        }
    }
}

impl Drop for LoginExample {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.db.display()));
        }
    }
}

/// A number no other call in this process returns: names of files and folders of one test.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// One HTTP response, as the test reads it.
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    /// The first value of header `name` (lowercase, as hyper sends it).
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(": ")?;
            key.eq_ignore_ascii_case(name).then_some(value)
        })
    }
}

/// A visitor with one cookie jar (the session cookie `login`), speaking HTTP/1.1 by hand.
struct Visitor {
    addr: String,
    cookie: Option<String>,
}

impl Visitor {
    fn new(addr: &str) -> Self {
        Self {
            addr: addr.to_owned(),
            cookie: None,
        }
    }

    fn get(&mut self, path: &str) -> Reply {
        self.send("GET", path, None)
    }

    /// A form POST (`application/x-www-form-urlencoded`).
    fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let body = fields
            .iter()
            .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        self.send("POST", path, Some(&body))
    }

    /// Sends the request with this visitor's cookie and keeps what `Set-Cookie` says.
    fn send(&mut self, method: &str, path: &str, form: Option<&str>) -> Reply {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        // Bounded: argon2 in a debug build takes a while, but never this long.
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        if let Some(cookie) = &self.cookie {
            request.push_str(&format!("Cookie: {cookie}\r\n"));
        }
        match form {
            Some(body) => request.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            )),
            None if method == "POST" => request.push_str("Content-Length: 0\r\n"),
            None => {}
        }
        request.push_str("Connection: close\r\n\r\n");
        request.push_str(form.unwrap_or_default());
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let reply = Reply {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        };
        if let Some(set) = reply.header("set-cookie") {
            let pair = set.split(';').next().unwrap();
            let removed = pair.ends_with('=') || set.contains("Max-Age=0");
            self.cookie = (!removed).then(|| pair.to_owned());
        }
        reply
    }

    /// The CSRF token of the form on `path`.
    fn token(&mut self, path: &str) -> String {
        let page = self.get(path);
        assert_eq!(page.status, 200, "{}", page.head);
        csrf_token(&page.body)
    }

    /// Signs in from the form, as a browser would; returns the `POST /login` reply.
    fn sign_in(&mut self, user: &str, password: &str, remember: bool) -> Reply {
        let token = self.token("/login");
        let mut fields = vec![
            ("csrf_token", token.as_str()),
            ("username", user),
            ("password", password),
        ];
        if remember {
            fields.push(("remember", "1"));
        }
        self.post("/login", &fields)
    }
}

/// The value of the hidden `csrf_token` input of `html`.
fn csrf_token(html: &str) -> String {
    let start = html
        .find("name=\"csrf_token\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF field in {html}"))
        + "name=\"csrf_token\" value=\"".len();
    let length = html[start..].find('"').unwrap();
    html[start..start + length].to_owned()
}

/// Percent-encoding for a form body: everything but unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[test]
fn signed_out_home_links_to_the_form_and_the_form_has_its_fields() {
    let example = LoginExample::start();
    let mut visitor = Visitor::new(&example.addr);
    let home = visitor.get("/");
    assert_eq!(home.status, 200);
    assert!(home.body.contains("href=\"/login\""), "{}", home.body);
    assert!(!home.body.contains("Signed in as"), "{}", home.body);
    assert!(
        visitor.cookie.is_none(),
        "a signed-out visit stores nothing"
    );

    let form = visitor.get("/login");
    assert_eq!(form.status, 200);
    for needle in [
        "<form method=\"post\" action=\"/login\">",
        "name=\"username\"",
        "type=\"password\" name=\"password\"",
        "type=\"checkbox\" name=\"remember\"",
        "type=\"hidden\" name=\"csrf_token\"",
        "type=\"submit\"",
    ] {
        assert!(form.body.contains(needle), "{needle} in {}", form.body);
    }
    let cookie = form
        .header("set-cookie")
        .expect("the CSRF secret is a write");
    assert!(cookie.starts_with("login="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP on loopback: {cookie}"
    );
}

#[test]
fn a_wrong_password_or_an_unknown_user_is_told_once() {
    let example = LoginExample::start();
    let mut visitor = Visitor::new(&example.addr);
    for (user, password) in [("alice", "bob-password"), ("mallory", "alice-password")] {
        let failed = visitor.sign_in(user, password, false);
        assert_eq!(failed.status, 303, "{}", failed.head);
        assert_eq!(failed.header("location"), Some("/login"));
        let shown = visitor.get("/login");
        assert!(
            shown.body.contains("Wrong username or password"),
            "{}",
            shown.body
        );
        let again = visitor.get("/login");
        assert!(
            !again.body.contains("Wrong username or password"),
            "shown once: {}",
            again.body
        );
        assert!(!visitor.get("/").body.contains("Signed in as"));
    }
}

#[test]
fn signing_in_renews_the_id_and_welcomes_once() {
    let example = LoginExample::start();
    let mut visitor = Visitor::new(&example.addr);
    let token = visitor.token("/login");
    let before = visitor.cookie.clone().unwrap();
    let signed_in = visitor.post(
        "/login",
        &[
            ("csrf_token", &token),
            ("username", "alice"),
            ("password", "alice-password"),
        ],
    );
    assert_eq!(signed_in.status, 303, "{}", signed_in.head);
    assert_eq!(signed_in.header("location"), Some("/"));
    let cookie = signed_in.header("set-cookie").unwrap();
    assert!(
        !cookie.contains("Max-Age") && !cookie.contains("Expires"),
        "without remember-me, a browser-session cookie: {cookie}"
    );
    let after = visitor.cookie.clone().unwrap();
    assert_ne!(after, before, "a new id at sign-in");

    let home = visitor.get("/");
    assert!(home.body.contains("Signed in as alice"), "{}", home.body);
    assert!(home.body.contains("Welcome, alice"), "{}", home.body);
    assert!(home.body.contains("action=\"/logout\""), "{}", home.body);
    csrf_token(&home.body);
    let again = visitor.get("/");
    assert!(again.body.contains("Signed in as alice"));
    assert!(
        !again.body.contains("Welcome"),
        "shown once: {}",
        again.body
    );

    let mut planted = Visitor::new(&example.addr);
    planted.cookie = Some(before);
    assert!(
        !planted.get("/").body.contains("Signed in as"),
        "the id from before sign-in is not signed in"
    );

    let mut remembered = Visitor::new(&example.addr);
    let reply = remembered.sign_in("bob", "bob-password", true);
    assert_eq!(reply.status, 303);
    let cookie = reply.header("set-cookie").unwrap();
    assert!(
        cookie.contains("Max-Age="),
        "remember-me persists: {cookie}"
    );
}

#[test]
fn posts_without_the_right_csrf_token_are_refused_and_change_nothing() {
    let example = LoginExample::start();
    let mut visitor = Visitor::new(&example.addr);

    // Not even a form, then a form without the field, then a forged token.
    assert_eq!(visitor.send("POST", "/login", None).status, 403);
    let token = visitor.token("/login");
    let cookie = visitor.cookie.clone();
    let forged = [
        ("username", "alice"),
        ("password", "alice-password"),
        ("csrf_token", "forged"),
    ];
    assert_eq!(visitor.post("/login", &forged[..2]).status, 403);
    assert_eq!(visitor.post("/login", &forged).status, 403);
    assert_eq!(visitor.cookie, cookie, "no new id");
    assert!(!visitor.get("/").body.contains("Signed in as"));

    let good = [
        ("csrf_token", token.as_str()),
        ("username", "alice"),
        ("password", "alice-password"),
    ];
    assert_eq!(visitor.post("/login", &good).status, 303);
    let signed_in = visitor.cookie.clone();
    for path in ["/logout", "/devices/logout-others"] {
        assert_eq!(visitor.send("POST", path, None).status, 403, "{path}");
        assert_eq!(visitor.post(path, &[]).status, 403, "{path}");
        assert_eq!(
            visitor.post(path, &[("csrf_token", &token)]).status,
            403,
            "{path}: the token from before sign-in was rotated with the id"
        );
    }
    assert_eq!(visitor.cookie, signed_in, "the session was not touched");
    assert!(visitor.get("/").body.contains("Signed in as alice"));

    let token = visitor.token("/");
    let out = visitor.post("/logout", &[("csrf_token", &token)]);
    assert_eq!(out.status, 303);
    assert_eq!(out.header("location"), Some("/"));
    assert!(visitor.cookie.is_none(), "the cookie is removed");
    assert!(!visitor.get("/").body.contains("Signed in as"));
}

#[test]
fn the_devices_page_lists_sessions_and_logs_out_the_others() {
    let example = LoginExample::start();
    let mut laptop = Visitor::new(&example.addr);
    let mut phone = Visitor::new(&example.addr);
    assert_eq!(laptop.sign_in("alice", "alice-password", true).status, 303);
    assert_eq!(phone.sign_in("alice", "alice-password", false).status, 303);
    let mut bob = Visitor::new(&example.addr);
    assert_eq!(bob.sign_in("bob", "bob-password", false).status, 303);

    let page = laptop.get("/devices");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.body.matches("class=\"device\"").count(),
        2,
        "{}",
        page.body
    );
    assert_eq!(page.body.matches("this device").count(), 1, "{}", page.body);
    let token = csrf_token(&page.body);
    let done = laptop.post("/devices/logout-others", &[("csrf_token", &token)]);
    assert_eq!(done.status, 303);
    assert_eq!(done.header("location"), Some("/devices"));

    assert!(
        !phone.get("/").body.contains("Signed in as"),
        "the phone is out"
    );
    assert!(laptop.get("/").body.contains("Signed in as alice"));
    assert!(
        bob.get("/").body.contains("Signed in as bob"),
        "other users stay"
    );
    let page = laptop.get("/devices");
    assert_eq!(
        page.body.matches("class=\"device\"").count(),
        1,
        "{}",
        page.body
    );

    let mut stranger = Visitor::new(&example.addr);
    let away = stranger.get("/devices");
    assert_eq!(away.status, 303);
    assert_eq!(away.header("location"), Some("/login"));
}

#[test]
fn secure_cookies_turns_on_secure() {
    let example = LoginExample::start_with(&[("SECURE_COOKIES", "1")]);
    let form = Visitor::new(&example.addr).get("/login");
    let cookie = form.header("set-cookie").unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
}
