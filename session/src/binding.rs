//! The client a session is bound to: its IP address and User-Agent, as far as the request
//! tells them.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use http::header::USER_AGENT;
use http::{Extensions, HeaderMap};

use crate::config::{ClientIp, SessionConfig};

/// What binds a session to its client; signed together with the id. Empty (and one word, as
/// it rides in every response future) unless binding is configured.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientBinding(Option<Box<Bound>>);

/// The client's parts that a binding covers, as the bytes that are signed (empty: not bound,
/// or not told). Made once per request, so that checking several presented ids copies nothing.
#[derive(Debug, Clone)]
struct Bound {
    ip: Vec<u8>,
    user_agent: Vec<u8>,
    /// IP binding is on but the request does not tell the address from this source: the check
    /// cannot run, so the request is refused (see [`ClientBinding::unknown_ip`]).
    unknown_ip: Option<ClientIp>,
}

/// Which parts of the client the config binds to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BindingPolicy {
    ip: bool,
    user_agent: bool,
    source: ClientIp,
}

impl BindingPolicy {
    pub(crate) fn from_config(config: &SessionConfig) -> Self {
        Self {
            ip: config.bind_ip,
            user_agent: config.bind_user_agent,
            source: config.client_ip,
        }
    }

    pub(crate) fn is_enabled(self) -> bool {
        self.ip || self.user_agent
    }

    /// The binding of this request's client.
    pub(crate) fn of(self, headers: &HeaderMap, extensions: &Extensions) -> ClientBinding {
        let ip = self
            .ip
            .then(|| self.client_ip(headers, extensions))
            .flatten();
        let user_agent = self.user_agent.then(|| headers.get(USER_AGENT)).flatten();
        ClientBinding(Some(Box::new(Bound {
            unknown_ip: (self.ip && ip.is_none()).then_some(self.source),
            ip: ip.map(|ip| ip.to_string().into_bytes()).unwrap_or_default(),
            user_agent: user_agent
                .map(|ua| ua.as_bytes().to_vec())
                .unwrap_or_default(),
        })))
    }

    /// The client address from the one source the config names, never from another header a
    /// client could add. `None` when the request does not tell: the socket peer without
    /// `ConnectInfo`, the header missing, or fewer addresses in it than the proxies counted.
    fn client_ip(self, headers: &HeaderMap, extensions: &Extensions) -> Option<IpAddr> {
        match self.source {
            ClientIp::Peer => extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
            ClientIp::XForwardedFor(proxies) => nth_from_right(x_forwarded_for(headers), proxies),
            ClientIp::Forwarded(proxies) => nth_from_right(forwarded_for(headers), proxies),
            ClientIp::XRealIp => {
                // The proxy sets it; two of them mean one came from the client.
                let mut values = headers.get_all("x-real-ip").iter();
                match (values.next(), values.next()) {
                    (Some(value), None) => value.to_str().ok().and_then(parse_node),
                    _ => None,
                }
            }
        }
    }
}

impl ClientBinding {
    /// The configured source of the client's address, when IP binding is on and this request
    /// does not tell it. Such a request can neither have a bound id verified nor be given one:
    /// binding to "no address" would let the id work from any address, so the store refuses.
    #[inline]
    pub(crate) fn unknown_ip(&self) -> Option<ClientIp> {
        self.0.as_ref().and_then(|bound| bound.unknown_ip)
    }

    /// The bytes signed with the id.
    pub(crate) fn signed_parts(&self) -> [&[u8]; 2] {
        match &self.0 {
            Some(bound) => [&bound.ip, &bound.user_agent],
            None => [&[], &[]],
        }
    }
}

/// The `n`-th address from the right: the one the outermost of `n` trusted proxies appended.
fn nth_from_right(addresses: Vec<Option<IpAddr>>, n: usize) -> Option<IpAddr> {
    let index = addresses.len().checked_sub(n.max(1))?;
    addresses.into_iter().nth(index).flatten()
}

/// Every `for=` of every `Forwarded` header, in order; `None` for an entry that is not an IP
/// (an obfuscated or `unknown` node).
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("forwarded")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                name.eq_ignore_ascii_case("for").then(|| parse_node(value))
            })
        })
        .collect()
}

/// Every address of every `X-Forwarded-For` header, in order.
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(parse_node)
        .collect()
}

/// `192.0.2.1`, `"192.0.2.1:8080"`, `"[2001:db8::1]:443"`, `[2001:db8::1]`, `2001:db8::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    if let Ok(ip) = node.parse() {
        return Some(ip);
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    node.strip_prefix('[')?.split(']').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn policy(source: ClientIp) -> BindingPolicy {
        BindingPolicy {
            ip: true,
            user_agent: false,
            source,
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn takes_the_socket_peer_and_ignores_forwarding_headers() {
        let mut extensions = Extensions::new();
        extensions.insert(ConnectInfo("10.0.0.9:5000".parse::<SocketAddr>().unwrap()));
        let spoofed = headers(&[("x-forwarded-for", "1.2.3.4")]);
        let peer = policy(ClientIp::Peer);
        assert_eq!(peer.client_ip(&spoofed, &extensions), ip("10.0.0.9"));
        assert_eq!(peer.client_ip(&spoofed, &Extensions::new()), None);
    }

    #[test]
    fn reads_only_the_configured_header_counting_proxies_from_the_right() {
        let none = Extensions::new();
        let all = headers(&[
            ("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.2"),
            ("forwarded", "for=1.1.1.1"),
            ("x-real-ip", "2.2.2.2"),
        ]);
        let read = |source| policy(source).client_ip(&all, &none);
        assert_eq!(read(ClientIp::XForwardedFor(1)), ip("10.0.0.2"));
        assert_eq!(read(ClientIp::XForwardedFor(2)), ip("203.0.113.7"));
        assert_eq!(
            read(ClientIp::XForwardedFor(4)),
            None,
            "fewer entries than proxies"
        );
        assert_eq!(read(ClientIp::Forwarded(1)), ip("1.1.1.1"));
        assert_eq!(read(ClientIp::XRealIp), ip("2.2.2.2"));

        let forwarded = headers(&[(
            "forwarded",
            "for=6.6.6.6, for=\"[2001:db8::1]:443\";proto=https",
        )]);
        let from = |source| policy(source).client_ip(&forwarded, &none);
        assert_eq!(from(ClientIp::Forwarded(1)), ip("2001:db8::1"));
        assert_eq!(
            from(ClientIp::XForwardedFor(1)),
            None,
            "another header is never read"
        );

        let two_real = headers(&[("x-real-ip", "198.51.100.4"), ("x-real-ip", "1.2.3.4")]);
        assert_eq!(policy(ClientIp::XRealIp).client_ip(&two_real, &none), None);
        let garbage = headers(&[("x-forwarded-for", "not-an-ip")]);
        assert_eq!(
            policy(ClientIp::XForwardedFor(1)).client_ip(&garbage, &none),
            None
        );
    }
}
