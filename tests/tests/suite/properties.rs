//! Properties of everything a client sends that may name a session: `Cookie` headers,
//! `x-session-id` headers and the ids and signed values in them, driven through a real
//! `Router` with `SessionLayer` on servers that sign or not, bind the User-Agent or not, and
//! read cookies, the header or both.
//!
//! For any bytes `http` lets into those headers: no panic, no 5xx, and a session is adopted
//! exactly when a value is one the server issued for it (so junk, forged, tampered, truncated
//! or extended values never are), while a real value among a few junk ones is still found.
//!
//! Case counts follow `PROPTEST_CASES`; see CONTRIBUTING.md for the long run.

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::sample::Index;
use tower::ServiceExt;
use typed_session::{
    Key, SessionConfig, SessionData, SessionId, SessionLayer, SessionStore, Transport, TypedSession,
};

use crate::common::properties::{check, config, runtime};
use crate::common::{HeaderValue, Request, StatusCode, header};

#[derive(SessionData)]
struct Visit {
    count: u64,
}

async fn increment(session: TypedSession<Visit>) -> String {
    session
        .update_count(|count| {
            *count += 1;
            *count
        })
        .to_string()
}

/// Reads only, so that a request without a session creates none: every server holds exactly
/// one session however many cases run.
async fn peek(session: TypedSession<Visit>) -> String {
    session.count().to_string()
}

/// The count of each server's one real session. A request that is not given it reads a fresh
/// session's 0.
const REAL_COUNT: &str = "7";

/// The User-Agent the real sessions were created with.
const AGENT: &[u8] = b"proptest-agent/1.0 (\xe2\x80\x94 not ASCII)";

const ID_HEADER: &str = "x-session-id";

/// Which transport carries a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Cookie,
    Header,
}

/// One server and the real session it issued.
struct Server {
    app: Router,
    signed: bool,
    binds_agent: bool,
    /// The value the server issued for its real session on each transport it reads.
    issued: Vec<(Via, Vec<u8>)>,
}

impl Server {
    /// The servers every property runs on: unsigned cookies; signed cookies bound to the
    /// User-Agent; signed cookie and header (the same session under two values, each signed
    /// over its own transport's name); an unsigned header. IP binding is left out: what it does
    /// without a known client address is being changed.
    async fn all() -> Vec<Self> {
        let key = || Key::from_secret(b"properties.rs: a fixed test key of 32+ bytes").unwrap();
        let mut servers = Vec::new();
        for (config, signed, binds_agent) in [
            (SessionConfig::default(), false, false),
            (
                SessionConfig::default()
                    .with_key(key())
                    .with_user_agent_binding(true),
                true,
                true,
            ),
            (
                SessionConfig::default()
                    .with_key(key())
                    .with_transport(Transport::CookieAndHeader),
                true,
                false,
            ),
            (
                SessionConfig::default().with_transport(Transport::Header),
                false,
                false,
            ),
        ] {
            servers.push(Self::start(config, signed, binds_agent).await);
        }
        servers
    }

    /// A memory store behind a `Router`, with a real session counted up to [`REAL_COUNT`];
    /// `signed` and `binds_agent` say what `config` does.
    async fn start(config: SessionConfig, signed: bool, binds_agent: bool) -> Self {
        let store = SessionStore::<Visit>::builder()
            .config(config)
            .build()
            .await
            .unwrap();
        let app = Router::new()
            .route("/", get(increment))
            .route("/peek", get(peek))
            .layer(SessionLayer::new(store));
        let mut server = Self {
            app,
            signed,
            binds_agent,
            issued: Vec::new(),
        };
        let first = server.send(&Presented::default().agent(AGENT), "/").await;
        assert_eq!(first.status, StatusCode::OK);
        server.issued = first.issued;
        assert!(!server.issued.is_empty(), "the first visit is given an id");
        let (via, value) = server.issued[0].clone();
        let real = Presented::default().agent(AGENT).value(via, value);
        for _ in 1..REAL_COUNT.parse().unwrap() {
            server.send(&real, "/").await;
        }
        assert_eq!(server.send(&real, "/peek").await.body, REAL_COUNT);
        server
    }

    /// The transport the `index` picks among those this server reads.
    fn via(&self, index: &Index) -> Via {
        self.issued[index.index(self.issued.len())].0
    }

    /// The value issued on the transport the `index` picks (on the cookie-and-header server,
    /// either transport's).
    fn issued(&self, index: &Index) -> &[u8] {
        &self.issued[index.index(self.issued.len())].1
    }

    /// Whether `value`, presented alone on `via` by a client sending `agent`, names the real
    /// session: exactly the value issued for that transport (an unsigned one may also carry
    /// the consent marker, which a signature would cover), around whitespace that the
    /// transports trim, from the client it was bound to.
    fn accepts(&self, via: Via, value: &[u8], agent: Option<&[u8]>) -> bool {
        let Some((_, genuine)) = self.issued.iter().find(|(v, _)| *v == via) else {
            return false;
        };
        let value = value.trim_ascii();
        let spelled = value == genuine.as_slice()
            || (!self.signed && value == [genuine.as_slice(), b"~s"].concat());
        spelled && (!self.binds_agent || agent == Some(AGENT))
    }

    /// Sends `presented` to `path`.
    async fn send(&self, presented: &Presented, path: &str) -> Answer {
        let response = self
            .app
            .clone()
            .oneshot(presented.request(path))
            .await
            .unwrap();
        let status = response.status();
        let mut issued = Vec::new();
        for line in response.headers().get_all(header::SET_COOKIE) {
            let pair = line.as_bytes().split(|&b| b == b';').next().unwrap();
            if let Some(value) = pair.strip_prefix(b"visit=".as_slice()) {
                issued.push((Via::Cookie, value.to_vec()));
            }
        }
        if let Some(value) = response.headers().get(ID_HEADER) {
            issued.push((Via::Header, value.as_bytes().to_vec()));
        }
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
            issued,
        }
    }

    /// What `/peek` reads for `presented`: the count, after checking that the answer is a 200.
    async fn peek(&self, presented: &Presented) -> Result<String, TestCaseError> {
        let Answer { status, body, .. } = self.send(presented, "/peek").await;
        prop_assert_eq!(status, StatusCode::OK, "{}", body);
        Ok(body)
    }
}

/// A response: its status, its body, and the values it hands out for the session.
struct Answer {
    status: StatusCode,
    body: String,
    issued: Vec<(Via, Vec<u8>)>,
}

/// What a client presents: `Cookie` header lines, `x-session-id` values and a User-Agent, as
/// bytes.
#[derive(Debug, Clone, Default)]
struct Presented {
    cookies: Vec<Vec<u8>>,
    ids: Vec<Vec<u8>>,
    agent: Option<Vec<u8>>,
}

impl Presented {
    fn agent(mut self, agent: &[u8]) -> Self {
        self.agent = Some(agent.to_vec());
        self
    }

    /// Adds `value` alone: a `Cookie: visit=<value>` line or an `x-session-id` value.
    fn value(mut self, via: Via, value: Vec<u8>) -> Self {
        match via {
            Via::Cookie => self.cookies.push([b"visit=".as_slice(), &value].concat()),
            Via::Header => self.ids.push(value),
        }
        self
    }

    fn request(&self, path: &str) -> Request<Body> {
        let mut request = Request::get(path);
        let value = |bytes: &[u8]| HeaderValue::from_bytes(bytes).expect("a valid header value");
        for line in &self.cookies {
            request = request.header(header::COOKIE, value(line));
        }
        for id in &self.ids {
            request = request.header(ID_HEADER, value(id));
        }
        if let Some(agent) = &self.agent {
            request = request.header(header::USER_AGENT, value(agent));
        }
        request.body(Body::empty()).unwrap()
    }
}

/// Any byte a header value may hold: tab, visible ASCII and space, and obs-text (0x80–0xff,
/// not UTF-8 on its own).
fn header_byte() -> impl Strategy<Value = u8> {
    prop_oneof![Just(b'\t'), 0x20_u8..=0x7e, 0x80_u8..=0xff]
}

/// A byte a value may hold without ending its cookie pair (any but `;`), favouring the
/// alphabets of ids (hex) and signatures (base64url).
fn value_byte() -> impl Strategy<Value = u8> {
    const ALPHABETS: &[u8] = b"0123456789abcdefABCDEFghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ-_.~";
    prop_oneof![
        2 => prop::sample::select(ALPHABETS),
        1 => header_byte().prop_filter("`;` ends a cookie pair", |&b| b != b';'),
    ]
}

/// Bytes to splice into a value: the markers of the value format (`.`, `~s`) or any bytes.
fn splice() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b".".to_vec()),
        Just(b"~s".to_vec()),
        prop::collection::vec(value_byte(), 1..6),
    ]
}

/// One change to a genuine value.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(Index, u8),
    Remove(Index),
    Insert(Index, Vec<u8>),
    Truncate(Index),
    Extend(Vec<u8>),
}

impl Mutation {
    fn apply(&self, value: &mut Vec<u8>) {
        let len = value.len();
        match self {
            Self::Replace(at, byte) if len > 0 => value[at.index(len)] = *byte,
            Self::Remove(at) if len > 0 => {
                value.remove(at.index(len));
            }
            Self::Insert(at, bytes) => {
                let at = at.index(len + 1);
                value.splice(at..at, bytes.iter().copied());
            }
            Self::Truncate(at) => value.truncate(at.index(len + 1)),
            Self::Extend(bytes) => value.extend_from_slice(bytes),
            Self::Replace(..) | Self::Remove(_) => {}
        }
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), value_byte()).prop_map(|(at, byte)| Mutation::Replace(at, byte)),
        1 => any::<Index>().prop_map(Mutation::Remove),
        1 => (any::<Index>(), splice()).prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => splice().prop_map(Mutation::Extend),
    ]
}

/// A server's genuine value (which one, by index), changed by up to three mutations (none,
/// now and then: the value as issued).
#[derive(Debug, Clone)]
struct Mutated {
    base: Index,
    mutations: Vec<Mutation>,
}

impl Mutated {
    fn value(&self, server: &Server) -> Vec<u8> {
        let mut value = server.issued(&self.base).to_vec();
        for mutation in &self.mutations {
            mutation.apply(&mut value);
        }
        value
    }
}

fn mutated() -> impl Strategy<Value = Mutated> {
    let mutations = prop_oneof![
        1 => Just(Vec::new()),
        7 => prop::collection::vec(mutation(), 1..=3),
    ];
    (any::<Index>(), mutations).prop_map(|(base, mutations)| Mutated { base, mutations })
}

/// The User-Agent of a request: the one the sessions were made with, none, or any other.
fn agent() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        3 => Just(Some(AGENT.to_vec())),
        1 => Just(None),
        1 => prop::collection::vec(header_byte(), 0..24).prop_map(Some),
    ]
}

/// A random session id's text: well-formed, and never one a server issued.
fn random_id() -> impl Strategy<Value = Vec<u8>> {
    any::<u128>().prop_map(|id| format!("{id:032x}").into_bytes())
}

/// Pieces of junk headers: names (ours, longer, other), separators, whitespace, format
/// markers, ids no server issued, bare or behind 43 base64url characters as if signed, and any
/// bytes.
fn junk_piece() -> impl Strategy<Value = Vec<u8>> {
    let signature = prop::collection::vec(
        prop::sample::select(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".as_slice(),
        ),
        43,
    );
    prop_oneof![
        4 => prop::sample::select(
            &[
                "visit", "visit=", "visitor=", "=", ";", "; ", " ", "\t", "~s", ".", "x-session-id",
                "__Host-visit=",
            ][..]
        )
        .prop_map(|piece| piece.as_bytes().to_vec()),
        2 => random_id(),
        2 => (random_id(), any::<bool>(), signature).prop_map(|(id, consent, signature)| {
            let marker: &[u8] = if consent { b"~s." } else { b"." };
            [id, marker.to_vec(), signature].concat()
        }),
        2 => prop::collection::vec(header_byte(), 1..8),
    ]
}

/// Up to three `Cookie` lines and four `x-session-id` values of junk (many values, up to 48
/// pieces a line), and any User-Agent.
fn junk() -> impl Strategy<Value = Presented> {
    let line = |pieces| prop::collection::vec(junk_piece(), pieces).prop_map(|p| p.concat());
    (
        prop::collection::vec(line(0..48), 0..=3),
        prop::collection::vec(line(0..6), 0..=4),
        agent(),
    )
        .prop_map(|(cookies, ids, agent)| Presented {
            cookies,
            ids,
            agent,
        })
}

/// A value among others: a server's genuine value changed (or not), a well-formed id that no
/// server issued (which an unsigned server can only tell from its own by looking it up), or
/// any bytes.
#[derive(Debug, Clone)]
enum Junk {
    Mutated(Mutated),
    Id(Vec<u8>),
    Bytes(Vec<u8>),
}

impl Junk {
    fn value(&self, server: &Server) -> Vec<u8> {
        match self {
            Self::Mutated(mutated) => mutated.value(server),
            Self::Id(bytes) | Self::Bytes(bytes) => bytes.clone(),
        }
    }
}

/// A real value among up to eight others on the transports the server reads (each picked by
/// its index), with cookies of other names in between.
#[derive(Debug, Clone)]
struct Crowd {
    others: Vec<(Index, Junk)>,
    real: (Index, Index),
    foreign: Vec<(Index, String, Vec<u8>)>,
    separator: &'static str,
}

impl Crowd {
    fn presented(&self, server: &Server) -> Presented {
        let mut values: Vec<(Via, Vec<u8>)> = self
            .others
            .iter()
            .map(|(via, junk)| (server.via(via), junk.value(server)))
            .collect();
        let (at, via) = &self.real;
        let real = (server.via(via), server.issued(via).to_vec());
        values.insert(at.index(values.len() + 1), real);
        let mut pairs: Vec<Vec<u8>> = Vec::new();
        let mut ids = Vec::new();
        for (via, value) in values {
            match via {
                Via::Cookie => pairs.push([b"visit=".as_slice(), &value].concat()),
                Via::Header => ids.push(value),
            }
        }
        for (at, name, value) in &self.foreign {
            let pair = [name.as_bytes(), b"=", value].concat();
            pairs.insert(at.index(pairs.len() + 1), pair);
        }
        let cookies = if pairs.is_empty() {
            Vec::new()
        } else {
            vec![pairs.join(self.separator.as_bytes())]
        };
        Presented {
            cookies,
            ids,
            agent: Some(AGENT.to_vec()),
        }
    }
}

fn crowd() -> impl Strategy<Value = Crowd> {
    let junk = prop_oneof![
        mutated().prop_map(Junk::Mutated),
        random_id().prop_map(Junk::Id),
        prop::collection::vec(value_byte(), 0..64).prop_map(Junk::Bytes),
    ];
    let foreign = (
        any::<Index>(),
        "[a-zA-Z_][a-zA-Z0-9_-]{0,8}".prop_filter("another name", |name| name != "visit"),
        prop::collection::vec(value_byte(), 0..16),
    );
    (
        prop::collection::vec((any::<Index>(), junk), 0..=8),
        (any::<Index>(), any::<Index>()),
        prop::collection::vec(foreign, 0..4),
        prop::sample::select(&["; ", ";", " ;\t", ";  "][..]),
    )
        .prop_map(|(others, real, foreign, separator)| Crowd {
            others,
            real,
            foreign,
            separator,
        })
}

/// A genuine value, changed or not, presented alone on a transport, from some User-Agent:
/// the session is adopted exactly when the value is one the server issued there (to that
/// client, when bound), and a fresh one is read otherwise. Covers tampered signed values
/// (any byte replaced, removed or inserted, truncated, extended), values moved to the other
/// transport, and unsigned ids changed into other well-formed ids.
#[test]
fn a_value_is_adopted_exactly_when_the_server_issued_it() {
    let runtime = runtime();
    let servers = runtime.block_on(Server::all());
    let strategy = (mutated(), any::<Index>(), agent());
    check(config(512), strategy, |(mutated, via, agent)| {
        runtime.block_on(async {
            for server in &servers {
                let (via, value) = (server.via(&via), mutated.value(server));
                let accepted = server.accepts(via, &value, agent.as_deref());
                let presented = Presented {
                    agent: agent.clone(),
                    ..Presented::default()
                }
                .value(via, value.clone());
                let expected = if accepted { REAL_COUNT } else { "0" };
                let read = server.peek(&presented).await?;
                prop_assert_eq!(
                    read,
                    expected,
                    "{:?} {:?} signed={}",
                    via,
                    String::from_utf8_lossy(&value),
                    server.signed
                );
            }
            Ok(())
        })
    });
}

/// Junk headers (many values, separators, whitespace, non-UTF-8 bytes, ids no server issued,
/// forged signatures): a 200 with a fresh session, never an error or another session.
#[test]
fn junk_headers_never_adopt_a_session() {
    let runtime = runtime();
    let servers = runtime.block_on(Server::all());
    check(config(512), junk(), |presented| {
        runtime.block_on(async {
            for server in &servers {
                prop_assert_eq!(server.peek(&presented).await?, "0");
            }
            Ok(())
        })
    });
}

/// The real value among up to eight junk values of its name (cookies of other paths or
/// domains can share it), on either transport, and cookies of other names: still found.
#[test]
fn a_real_value_among_a_few_junk_ones_is_found() {
    let runtime = runtime();
    let servers = runtime.block_on(Server::all());
    check(config(512), crowd(), |crowd| {
        runtime.block_on(async {
            for server in &servers {
                let presented = crowd.presented(server);
                prop_assert_eq!(
                    server.peek(&presented).await?,
                    REAL_COUNT,
                    "{:?}",
                    presented
                );
            }
            Ok(())
        })
    });
}

/// Text near a session id: canonical, of the wrong length or case, with signs and dashes, an
/// id with one character changed, or anything.
fn id_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{32}",
        "[0-9a-fA-F]{31,33}",
        "[0-9a-f+-]{32}",
        (any::<u128>(), any::<Index>(), any::<char>()).prop_map(|(id, at, c)| {
            let mut text: Vec<char> = format!("{id:032x}").chars().collect();
            let at = at.index(text.len());
            text[at] = c;
            text.into_iter().collect()
        }),
        any::<String>(),
    ]
}

/// `SessionId` parses exactly its canonical text (32 lowercase hex digits) and prints back
/// the same text: one session, one spelling.
#[test]
fn session_ids_parse_exactly_their_canonical_text() {
    check(config(4096), id_text(), |text| {
        let canonical = text.len() == SessionId::TEXT_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        match text.parse::<SessionId>() {
            Ok(id) => {
                prop_assert!(canonical, "{:?} parsed", text);
                prop_assert_eq!(id.to_string(), text.as_str());
                let value = u128::from_str_radix(&text, 16).unwrap();
                prop_assert_eq!(id.to_bytes(), value.to_be_bytes());
            }
            Err(_) => prop_assert!(!canonical, "{:?} refused", text),
        }
        Ok(())
    });
}
