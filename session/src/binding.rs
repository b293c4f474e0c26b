//! The client a session is bound to: its IP address and User-Agent, as far as the request
//! tells them.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use http::header::USER_AGENT;
use http::{Extensions, HeaderMap};

use crate::config::SessionConfig;

/// What binds a session to its client; signed together with the id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ClientBinding {
    ip: Option<IpAddr>,
    user_agent: Option<Vec<u8>>,
}

/// Which parts of the client the config binds to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BindingPolicy {
    ip: bool,
    user_agent: bool,
    trusted_proxies: usize,
}

impl BindingPolicy {
    pub(crate) fn from_config(config: &SessionConfig) -> Self {
        Self {
            ip: config.bind_ip,
            user_agent: config.bind_user_agent,
            trusted_proxies: config.trusted_proxies,
        }
    }

    pub(crate) fn is_enabled(self) -> bool {
        self.ip || self.user_agent
    }

    /// The binding of this request's client.
    pub(crate) fn of(self, headers: &HeaderMap, extensions: &Extensions) -> ClientBinding {
        ClientBinding {
            ip: self
                .ip
                .then(|| self.client_ip(headers, extensions))
                .flatten(),
            user_agent: self
                .user_agent
                .then(|| headers.get(USER_AGENT).map(|ua| ua.as_bytes().to_vec()))
                .flatten(),
        }
    }

    /// The socket peer, or with `n` trusted proxies the `n`-th address from the right of
    /// `Forwarded`, else of `X-Forwarded-For`, else (`n == 1`) `X-Real-IP`. `None` when the
    /// request does not tell, which binds to "unknown": still consistent, but weaker.
    fn client_ip(self, headers: &HeaderMap, extensions: &Extensions) -> Option<IpAddr> {
        if self.trusted_proxies == 0 {
            return extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip());
        }
        let n = self.trusted_proxies;
        nth_from_right(forwarded_for(headers), n)
            .or_else(|| nth_from_right(x_forwarded_for(headers), n))
            .or_else(|| {
                (n == 1)
                    .then(|| headers.get("x-real-ip")?.to_str().ok()?.trim().parse().ok())
                    .flatten()
            })
    }
}

impl ClientBinding {
    /// The bytes signed with the id.
    pub(crate) fn signed_parts(&self) -> [Vec<u8>; 2] {
        [
            self.ip
                .map(|ip| ip.to_string().into_bytes())
                .unwrap_or_default(),
            self.user_agent.clone().unwrap_or_default(),
        ]
    }
}

fn nth_from_right(addresses: Vec<Option<IpAddr>>, n: usize) -> Option<IpAddr> {
    let index = addresses.len().checked_sub(n)?;
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

    fn policy(proxies: usize) -> BindingPolicy {
        BindingPolicy {
            ip: true,
            user_agent: false,
            trusted_proxies: proxies,
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
    fn takes_the_socket_peer_without_proxies_and_ignores_forwarding_headers() {
        let mut extensions = Extensions::new();
        extensions.insert(ConnectInfo("10.0.0.9:5000".parse::<SocketAddr>().unwrap()));
        let spoofed = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(policy(0).client_ip(&spoofed, &extensions), ip("10.0.0.9"));
        assert_eq!(policy(0).client_ip(&spoofed, &Extensions::new()), None);
    }

    #[test]
    fn counts_trusted_proxies_from_the_right() {
        let none = Extensions::new();
        let xff = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.2")]);
        assert_eq!(policy(1).client_ip(&xff, &none), ip("10.0.0.2"));
        assert_eq!(policy(2).client_ip(&xff, &none), ip("203.0.113.7"));
        assert_eq!(
            policy(4).client_ip(&xff, &none),
            None,
            "fewer entries than proxies"
        );
        let forwarded = headers(&[(
            "forwarded",
            "for=6.6.6.6, for=\"[2001:db8::1]:443\";proto=https",
        )]);
        assert_eq!(policy(1).client_ip(&forwarded, &none), ip("2001:db8::1"));
        let real = headers(&[("x-real-ip", "198.51.100.4")]);
        assert_eq!(policy(1).client_ip(&real, &none), ip("198.51.100.4"));
        assert_eq!(policy(2).client_ip(&real, &none), None);
        let garbage = headers(&[("x-forwarded-for", "not-an-ip")]);
        assert_eq!(policy(1).client_ip(&garbage, &none), None);
    }
}
