//! The egress policy: which addresses the connections of scrapers may reach.
//!
//! Scrapers fetch URLs their users choose, from inside the operator's network. By default they
//! may not reach what operators rarely mean to expose: loopback, link-local (cloud metadata
//! services answer at 169.254.169.254), private, shared (carrier-grade NAT) and unique-local
//! ranges, multicast, broadcast and unspecified addresses, in IPv4, IPv6, IPv4-mapped and
//! NAT64 forms. The operator allows ranges or host names explicitly ([`EgressRule`]).
//!
//! The check is made on the address of every connection, not on URLs: [`PolicyResolver`]
//! resolves a host name and gives the HTTP client only the addresses the policy allows, so a
//! redirect to a name, or a name that resolves differently the second time (DNS rebinding),
//! is checked where the connection is made. Literal addresses in URLs never reach a
//! resolver: [`EgressPolicy::check_url`] is applied to each request's URL before it is sent
//! and to every redirect hop ([`redirect_policy`]).
//!
//! Through a proxy the client resolves only the proxy's name, and the proxy resolves the
//! target: the policy then applies to the proxy's address (the operator's own proxy is
//! trusted) and to literal addresses in target URLs.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;
use reqwest::Url;

use crate::redact::redact_url;

/// One entry of the operator's allow list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EgressRule {
    /// Addresses in a range (`10.0.0.0/8`; a single address is its own range).
    Range(IpNet),
    /// A host name (`intranet.example`), whatever it resolves to. Only that exact name:
    /// subdomains are separate entries.
    Host(String),
}

impl FromStr for EgressRule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(range) = text.parse::<IpNet>() {
            return Ok(EgressRule::Range(range.trunc()));
        }
        if let Ok(address) = text.parse::<IpAddr>() {
            return Ok(EgressRule::Range(IpNet::from(address)));
        }
        let name = text.trim_end_matches('.').to_ascii_lowercase();
        let is_label = |label: &str| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if name.is_empty() || !name.split('.').all(is_label) {
            return Err(format!(
                "'{text}' is not an address, a range like 10.0.0.0/8 or a host name"
            ));
        }
        Ok(EgressRule::Host(name))
    }
}

impl fmt::Display for EgressRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EgressRule::Range(range) => range.fmt(f),
            EgressRule::Host(name) => f.write_str(name),
        }
    }
}

/// What scrapers may reach: everything but the refused ranges, plus the operator's allowed
/// ranges and hosts. The default allows nothing extra.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    allowed: Vec<EgressRule>,
}

impl FromIterator<EgressRule> for EgressPolicy {
    fn from_iter<I: IntoIterator<Item = EgressRule>>(rules: I) -> Self {
        EgressPolicy {
            allowed: rules.into_iter().collect(),
        }
    }
}

impl EgressPolicy {
    /// The operator's allow list.
    pub fn allowed(&self) -> &[EgressRule] {
        &self.allowed
    }

    fn allows_name(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.');
        self.allowed.iter().any(
            |rule| matches!(rule, EgressRule::Host(allowed) if allowed.eq_ignore_ascii_case(name)),
        )
    }

    /// Whether a connection to `address` may be made; `name` is the host name it was
    /// resolved from, `None` for an address written in the URL.
    pub fn check(&self, name: Option<&str>, address: IpAddr) -> Result<(), EgressDenied> {
        if name.is_some_and(|name| self.allows_name(name)) {
            return Ok(());
        }
        let canonical = canonical(address);
        let Some(range) = refused_range(canonical) else {
            return Ok(());
        };
        let allowed = self
            .allowed
            .iter()
            .any(|rule| matches!(rule, EgressRule::Range(allowed) if allowed.contains(&canonical)));
        if allowed {
            return Ok(());
        }
        Err(EgressDenied {
            name: name.map(str::to_owned),
            address,
            range,
            proxy: false,
            redirected_to: None,
        })
    }

    /// Checks a URL whose host is a literal address; a named host is checked when the
    /// connection resolves it.
    pub(crate) fn check_url(&self, url: &Url) -> Result<(), EgressDenied> {
        // The URL parser has already turned every IPv4 spelling (`2130706433`, `0x7f.1`)
        // into dotted form, and writes IPv6 addresses in brackets.
        let host = url.host_str().unwrap_or_default();
        let literal = host
            .strip_prefix('[')
            .and_then(|host| host.strip_suffix(']'))
            .unwrap_or(host);
        match literal.parse::<IpAddr>() {
            Ok(address) => self.check(None, address),
            Err(_) => Ok(()),
        }
    }
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`) or NAT64 (`64:ff9b::a.b.c.d`)
/// IPv6 address, which reaches that IPv4 host; any other address as it is.
fn canonical(address: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = address else {
        return address;
    };
    let [a, b, c, d, e, f, g, h] = v6.segments();
    if [a, b, c, d, e, f] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [g1, g2] = g.to_be_bytes();
        let [h1, h2] = h.to_be_bytes();
        return IpAddr::V4(Ipv4Addr::new(g1, g2, h1, h2));
    }
    address.to_canonical()
}

/// The refused range `address` is in, as a phrase for the error ("a loopback address").
fn refused_range(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => {
            let [first, second, ..] = v4.octets();
            if first == 0 {
                Some("an unspecified address")
            } else if v4.is_loopback() {
                Some("a loopback address")
            } else if v4.is_private() {
                Some("a private address")
            } else if v4.is_link_local() {
                Some("a link-local address")
            } else if first == 100 && (64..128).contains(&second) {
                Some("a shared (carrier-grade NAT) address")
            } else if v4.is_broadcast() {
                Some("a broadcast address")
            } else if v4.is_multicast() {
                Some("a multicast address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if v6.is_unspecified() {
                Some("an unspecified address")
            } else if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unicast_link_local() {
                Some("a link-local address")
            } else if v6.is_unique_local() {
                Some("a unique-local address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else {
                None
            }
        }
    }
}

/// A connection the egress policy refused: what was to be reached, and how the operator
/// would allow it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct EgressDenied {
    /// The host name the address was resolved from; `None` for an address in the URL.
    pub name: Option<String>,
    /// The refused address: resolved from `name`, or written in the URL.
    pub address: IpAddr,
    /// The refused range, as a phrase ("a loopback address").
    pub range: &'static str,
    /// Whether the host is the proxy the requests go through.
    pub proxy: bool,
    /// The URL a redirect pointed to (credentials hidden), when a redirect led there.
    pub redirected_to: Option<String>,
}

impl fmt::Display for EgressDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(url) = &self.redirected_to {
            write!(f, "redirected to {url}: ")?;
        }
        if self.proxy {
            f.write_str("the proxy ")?;
        }
        let canonical = canonical(self.address);
        let single = if canonical.is_ipv4() { 32 } else { 128 };
        match &self.name {
            Some(name) => write!(
                f,
                "{name} resolves to {}, {}, which scrapers may not reach; the operator can allow it with --egress-allow {canonical}/{single} or --egress-allow {name}",
                self.address, self.range
            )?,
            None => write!(
                f,
                "{} is {}, which scrapers may not reach; the operator can allow it with --egress-allow {canonical}/{single}",
                self.address, self.range
            )?,
        }
        f.write_str(" (SNEAKPEEK_EGRESS_ALLOW)")
    }
}

/// The DNS resolver of the runtime's HTTP clients: resolves with the system's resolver, then
/// keeps only the addresses the policy allows. When none is left, the connection fails with
/// [`EgressDenied`].
pub(crate) struct PolicyResolver {
    pub policy: Arc<EgressPolicy>,
    /// Whether the client sends everything through a proxy: then only the proxy's name is
    /// resolved here.
    pub through_proxy: bool,
    /// A name resolved without the policy: the host of the operator's own proxy.
    pub trusted: Option<String>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let name = name.as_str().to_owned();
        let policy = self.policy.clone();
        let through_proxy = self.through_proxy;
        let trusted = self
            .trusted
            .as_deref()
            .is_some_and(|trusted| trusted.eq_ignore_ascii_case(&name));
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .filter(|address| {
                    if trusted {
                        return true;
                    }
                    let check = policy.check(Some(&name), address.ip());
                    let allowed = check.is_ok();
                    if let Err(denied) = check {
                        refused.get_or_insert(denied);
                    }
                    allowed
                })
                .collect();
            match refused {
                Some(mut denied) if allowed.is_empty() => {
                    denied.proxy = through_proxy;
                    Err(denied.into())
                }
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

/// Redirects a request follows, as many as reqwest's default.
const MAX_REDIRECTS: usize = 10;

/// Follows up to [`MAX_REDIRECTS`] redirects, refusing a hop to a literal address the policy
/// refuses (hops to names are checked when they are resolved).
pub(crate) fn redirect_policy(policy: Arc<EgressPolicy>) -> redirect::Policy {
    redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        match policy.check_url(attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(mut denied) => {
                denied.redirected_to = Some(redact_url(attempt.url().as_str()));
                attempt.error(denied)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: &EgressPolicy, address: &str) -> Option<&'static str> {
        policy
            .check(None, address.parse().unwrap())
            .err()
            .map(|denied| denied.range)
    }

    #[test]
    fn internal_ranges_are_refused_in_every_form_and_public_addresses_are_not() {
        let policy = EgressPolicy::default();
        let cases = [
            ("127.0.0.1", Some("a loopback address")),
            ("127.8.9.10", Some("a loopback address")),
            ("::1", Some("a loopback address")),
            ("::ffff:127.0.0.1", Some("a loopback address")),
            ("64:ff9b::7f00:1", Some("a loopback address")),
            ("0.0.0.0", Some("an unspecified address")),
            ("0.1.2.3", Some("an unspecified address")),
            ("::", Some("an unspecified address")),
            ("10.1.2.3", Some("a private address")),
            ("172.16.0.1", Some("a private address")),
            ("172.31.255.255", Some("a private address")),
            ("192.168.1.1", Some("a private address")),
            ("::ffff:10.0.0.1", Some("a private address")),
            ("169.254.169.254", Some("a link-local address")),
            ("::ffff:169.254.169.254", Some("a link-local address")),
            ("fe80::1", Some("a link-local address")),
            ("100.64.0.1", Some("a shared (carrier-grade NAT) address")),
            (
                "100.100.100.200",
                Some("a shared (carrier-grade NAT) address"),
            ),
            ("fc00::1", Some("a unique-local address")),
            ("fd00:ec2::254", Some("a unique-local address")),
            ("224.0.0.1", Some("a multicast address")),
            ("ff02::1", Some("a multicast address")),
            ("255.255.255.255", Some("a broadcast address")),
            ("8.8.8.8", None),
            ("172.32.0.1", None),
            ("100.128.0.1", None),
            ("2606:4700:4700::1111", None),
            ("::ffff:8.8.8.8", None),
        ];
        for (address, expected) in cases {
            assert_eq!(refused(&policy, address), expected, "{address}");
        }
    }

    #[test]
    fn allowed_ranges_and_names_open_exactly_what_they_say() {
        let policy: EgressPolicy = ["127.0.0.1", "10.0.0.0/8", "Intranet.Example."]
            .iter()
            .map(|rule| rule.parse::<EgressRule>().unwrap())
            .collect();
        assert_eq!(refused(&policy, "127.0.0.1"), None);
        assert_eq!(
            refused(&policy, "::ffff:127.0.0.1"),
            None,
            "mapped forms too"
        );
        assert_eq!(refused(&policy, "127.0.0.2"), Some("a loopback address"));
        assert_eq!(refused(&policy, "10.200.0.1"), None);
        assert_eq!(refused(&policy, "192.168.0.1"), Some("a private address"));
        let private: IpAddr = "192.168.0.1".parse().unwrap();
        assert_eq!(policy.check(Some("intranet.example"), private), Ok(()));
        assert!(policy.check(Some("other.example"), private).is_err());
    }

    #[test]
    fn rules_parse_addresses_ranges_and_names_and_refuse_the_rest() {
        let parsed: Vec<String> = ["10.1.2.3/8", "::1", "Host-1.example"]
            .iter()
            .map(|rule| rule.parse::<EgressRule>().unwrap().to_string())
            .collect();
        assert_eq!(parsed, ["10.0.0.0/8", "::1/128", "host-1.example"]);
        assert_eq!(
            "10.0.0.0/33".parse::<EgressRule>(),
            Err(
                "'10.0.0.0/33' is not an address, a range like 10.0.0.0/8 or a host name"
                    .to_owned()
            )
        );
        assert!("http://x".parse::<EgressRule>().is_err());
        assert!("".parse::<EgressRule>().is_err());
    }

    #[test]
    fn a_refusal_names_the_host_the_address_and_the_setting() {
        let denied = EgressPolicy::default()
            .check(Some("localhost"), "::1".parse().unwrap())
            .unwrap_err();
        assert_eq!(
            denied.to_string(),
            "localhost resolves to ::1, a loopback address, which scrapers may not reach; the operator can allow it with --egress-allow ::1/128 or --egress-allow localhost (SNEAKPEEK_EGRESS_ALLOW)"
        );
    }
}
