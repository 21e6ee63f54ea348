//! Who the client is when a reverse proxy stands in front of the server.
//!
//! Behind a proxy every connection comes from the proxy, so the client's address and whether
//! it used HTTPS are only known from the `X-Forwarded-For` and `X-Forwarded-Proto` headers the
//! proxy adds. Anyone can send those headers, so they are believed only on connections from
//! the addresses in `--trusted-proxies`; from anyone else they are ignored.
//!
//! The client's address keys the sign-in limit; `X-Forwarded-Proto: https` makes the sign-in
//! cookie `Secure`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap};
use ipnet::IpNet;

/// Parses one `--trusted-proxies` entry: an address (`127.0.0.1`, `::1`) or a range
/// (`10.0.0.0/8`).
pub fn parse_trusted_proxy(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is not an address or a range like 10.0.0.0/8"))
}

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(ranges: &[IpNet]) -> Self {
        TrustedProxies(ranges.to_vec())
    }

    fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|range| range.contains(&address))
    }

    /// The client's address: the peer of the connection, or, when that is a trusted proxy,
    /// the nearest address in `X-Forwarded-For` that is not one (proxies append the address
    /// they received the request from, so the entries on the left are the client's to
    /// choose). `None` when the server does not know its peers (a router served without
    /// connection info).
    pub fn client(&self, extensions: &Extensions, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer(extensions)?;
        if !self.trusts(peer) {
            return Some(peer);
        }
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for entry in forwarded.iter().rev() {
            let Ok(address) = entry.parse::<IpAddr>() else {
                break;
            };
            client = address.to_canonical();
            if !self.trusts(client) {
                break;
            }
        }
        Some(client)
    }

    /// Whether a trusted proxy says the browser reached it over HTTPS.
    pub fn forwarded_https(&self, extensions: &Extensions, headers: &HeaderMap) -> bool {
        if !peer(extensions).is_some_and(|peer| self.trusts(peer)) {
            return false;
        }
        // The last value is the one the nearest proxy added.
        headers
            .get_all("x-forwarded-proto")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .next_back()
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
    }
}

fn peer(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(peer: &str) -> Extensions {
        let mut extensions = Extensions::new();
        extensions.insert(ConnectInfo(SocketAddr::new(peer.parse().unwrap(), 40000)));
        extensions
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    axum::http::HeaderName::from_static(name),
                    value.parse().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn entries_are_addresses_or_ranges() {
        assert_eq!(
            parse_trusted_proxy("127.0.0.1").unwrap().to_string(),
            "127.0.0.1/32"
        );
        assert_eq!(
            parse_trusted_proxy(" 10.0.0.0/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(parse_trusted_proxy("::1").unwrap().to_string(), "::1/128");
        assert!(parse_trusted_proxy("proxy.example")
            .unwrap_err()
            .contains("proxy.example"));
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let proxies = TrustedProxies::new(&[parse_trusted_proxy("10.0.0.0/8").unwrap()]);
        let forwarded = headers(&[
            ("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.9"),
            ("x-forwarded-proto", "https"),
        ]);
        assert_eq!(
            proxies.client(&from("10.0.0.1"), &forwarded),
            Some("203.0.113.7".parse().unwrap()),
            "the nearest untrusted hop"
        );
        assert!(proxies.forwarded_https(&from("10.0.0.1"), &forwarded));
        assert_eq!(
            proxies.client(&from("192.0.2.1"), &forwarded),
            Some("192.0.2.1".parse().unwrap())
        );
        assert!(!proxies.forwarded_https(&from("192.0.2.1"), &forwarded));
        assert_eq!(
            proxies.client(
                &from("::ffff:10.0.0.1"),
                &headers(&[("x-forwarded-for", "garbage")])
            ),
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(proxies.client(&Extensions::new(), &forwarded), None);
        let downgraded = headers(&[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-proto", "http"),
        ]);
        assert!(
            !proxies.forwarded_https(&from("10.0.0.1"), &downgraded),
            "the nearest proxy's word counts"
        );
    }
}
