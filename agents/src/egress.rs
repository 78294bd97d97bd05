//! Where a task may send a request: the `http` kind's URL and `security_scanner`'s
//! `osv_url`. A request goes only to public addresses, plus the private networks the node
//! allows (`agents.egress.allowed_networks`). Loopback, link-local (the cloud metadata
//! service at 169.254.169.254), private, unique-local, carrier-grade NAT, multicast and
//! reserved addresses are refused, so a workflow cannot reach the node's own API, a
//! database beside it, or the instance's credentials. A project may be allowed private
//! networks of its own (its policy's `allowed_networks`), never loopback or link-local:
//! those only the operator opens.
//!
//! The check is made where the connection is made: host names are resolved by our
//! resolver, which hands the HTTP client only the addresses that pass (so a name that
//! resolves to a public address for the check and a private one for the connection
//! cannot slip through), an address written in the URL is checked before the request,
//! and every redirect is checked again. Proxies from the environment are not used: the
//! proxy would make the connection we vet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{Client, Url, redirect};

use crate::errors::{AgentError, invalid};

/// Redirects followed before a request fails.
const MAX_REDIRECTS: usize = 10;

/// The networks a node lets tasks reach beyond the public internet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Egress {
    allowed: Arc<Vec<Network>>,
}

impl Egress {
    /// Public addresses and `allowed_networks` (CIDR: `10.1.0.0/16`, `127.0.0.1/32`,
    /// `fd00::/8`); the error names the entry that is not one.
    pub fn new(allowed_networks: &[String]) -> Result<Self, String> {
        let allowed = allowed_networks
            .iter()
            .map(|entry| Network::parse(entry, NODE_SETTING))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            allowed: Arc::new(allowed),
        })
    }

    /// This policy, also allowing a project's `networks` (each one checked by
    /// [`check_project_network`] when it was granted, and again here).
    pub fn widened(&self, networks: &[String]) -> Result<Self, AgentError> {
        if networks.is_empty() {
            return Ok(self.clone());
        }
        let mut allowed = self.allowed.as_ref().clone();
        for entry in networks {
            check_project_network(entry).map_err(AgentError::Failed)?;
            allowed.push(Network::parse(entry, PROJECT_SETTING).map_err(AgentError::Failed)?);
        }
        Ok(Self {
            allowed: Arc::new(allowed),
        })
    }

    /// Whether a request may go to `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        is_public(ip) || self.allowed.iter().any(|network| network.contains(ip))
    }

    /// An HTTP client that connects only where this policy allows, with `timeout` per
    /// request.
    pub(crate) fn client(&self, timeout: Option<Duration>) -> Result<Guarded, AgentError> {
        let refused = Arc::new(Mutex::new(None));
        let redirects = (self.clone(), Arc::clone(&refused));
        let mut builder = Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(VettedResolver {
                egress: self.clone(),
                refused: Arc::clone(&refused),
            }))
            .redirect(redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= MAX_REDIRECTS {
                    return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
                }
                match redirects.0.check_literal(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(reason) => {
                        record(&redirects.1, &reason);
                        attempt.error(reason)
                    }
                }
            }));
        if let Some(timeout) = timeout {
            builder = builder.timeout(timeout);
        }
        let client = builder
            .build()
            .map_err(|error| AgentError::Failed(format!("cannot build an HTTP client: {error}")))?;
        Ok(Guarded { client, refused })
    }

    /// `url` (input `field`) when it is http(s) and, if its host is an address, an
    /// allowed one; a host name is checked when it is resolved.
    pub(crate) fn check_url(&self, field: &str, url: &str) -> Result<Url, AgentError> {
        let parsed = Url::parse(url)
            .map_err(|error| invalid(field, format!("`{url}` is not a URL: {error}")))?;
        self.check_literal(&parsed)
            .map_err(|refused| invalid(field, refused.to_string()))?;
        Ok(parsed)
    }

    fn check_literal(&self, url: &Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused::Scheme(url.scheme().to_string()));
        }
        let written = url.host_str().unwrap_or_default();
        let Ok(ip) = written
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        else {
            return Ok(());
        };
        if self.allows(ip) {
            Ok(())
        } else {
            Err(Refused::Address {
                host: ip.to_string(),
                addresses: vec![ip],
            })
        }
    }
}

/// Why a request may not go where it was sent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    #[error("only http:// and https:// URLs may be requested, not `{0}:`")]
    Scheme(String),
    #[error(
        "`{host}` is a non-public address ({}); a task may reach it only if the node allows \
         its network in `agents.egress.allowed_networks` (a private one, the project's \
         owner too: `troupe projects allow-network`)",
        list(.addresses)
    )]
    Address {
        host: String,
        addresses: Vec<IpAddr>,
    },
}

fn list(addresses: &[IpAddr]) -> String {
    addresses
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A client under the policy, and why it last refused to connect: the HTTP client's
/// error names only the URL.
pub(crate) struct Guarded {
    pub client: Client,
    refused: Arc<Mutex<Option<String>>>,
}

impl Guarded {
    /// Why a failed request was refused by the policy, if it was.
    pub(crate) fn refusal(&self) -> Option<String> {
        self.refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

fn record(slot: &Mutex<Option<String>>, reason: &Refused) {
    *slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reason.to_string());
}

/// Resolves a name and keeps the addresses the policy allows; none allowed is an error.
struct VettedResolver {
    egress: Egress,
    refused: Arc<Mutex<Option<String>>>,
}

impl Resolve for VettedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let egress = self.egress.clone();
        let slot = Arc::clone(&self.refused);
        Box::pin(async move {
            let host = name.as_str().to_string();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (allowed, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = resolved
                .into_iter()
                .partition(|address| egress.allows(address.ip()));
            if allowed.is_empty() && !refused.is_empty() {
                let addresses = refused.iter().map(SocketAddr::ip).collect();
                let reason = Refused::Address { host, addresses };
                record(&slot, &reason);
                return Err(Box::new(reason) as _);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

const NODE_SETTING: &str = "agents.egress.allowed_networks";
const PROJECT_SETTING: &str = "the project's allowed_networks";

/// Blocks no project may be allowed: this host (loopback, `0.0.0.0`, which Linux
/// connects to loopback) and link-local (the cloud metadata service at
/// 169.254.169.254). Only the operator opens them, in `agents.egress.allowed_networks`.
const OPERATOR_ONLY: [&str; 6] = [
    "127.0.0.0/8",
    "0.0.0.0/8",
    "169.254.0.0/16",
    "::1/128",
    "::/128",
    "fe80::/10",
];

/// Where a node keeps the private networks each project may reach (its projects'
/// policies); the agents crate knows no store.
#[async_trait::async_trait]
pub trait ProjectNetworks: Send + Sync {
    /// The networks `project` may reach beyond the node's now; none when they cannot be
    /// read (closed, not open).
    async fn allowed_networks(&self, project: &str) -> Vec<String>;
}

/// Whether `entry` is a network a project may be allowed: a CIDR block that shares no
/// address with loopback or link-local; the error says what is wrong.
pub fn check_project_network(entry: &str) -> Result<(), String> {
    let network = Network::parse(entry, PROJECT_SETTING)?;
    for reserved in OPERATOR_ONLY {
        let reserved = Network::parse(reserved, "OPERATOR_ONLY")?;
        if network.overlaps(&reserved) {
            return Err(format!(
                "`{entry}` reaches {}/{}: loopback and link-local networks (the node itself, \
                 the cloud metadata service) only the operator may open, in {NODE_SETTING}",
                reserved.address, reserved.prefix
            ));
        }
    }
    Ok(())
}

/// An address block: `address/prefix`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    /// `entry`, named in `setting`.
    fn parse(entry: &str, setting: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{entry}` in {setting} is not a network; write one as an address and a \
                 prefix length, like 10.1.0.0/16 or fd00::/8"
            )
        };
        let (address, prefix) = entry.trim().split_once('/').ok_or_else(bad)?;
        let address: IpAddr = address.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        if prefix > bits {
            return Err(bad());
        }
        Ok(Self { address, prefix })
    }

    /// Whether the two blocks share an address (one holds the other's first address).
    fn overlaps(&self, other: &Network) -> bool {
        self.contains(other.address) || other.contains(self.address)
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, canonical(ip)) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 address carried in IPv6 (mapped `::ffff:a.b.c.d`, or NAT64 `64:ff9b::a.b.c.d`)
/// as the IPv4 address it reaches.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let segments = v6.segments();
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [.., high, low] = segments;
                return IpAddr::V4(Ipv4Addr::from((u32::from(high) << 16) | u32::from(low)));
            }
            ip
        }
        IpAddr::V4(_) => ip,
    }
}

/// Whether `ip` is a public unicast address.
fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0) // site-local (deprecated)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::Egress;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_public_addresses_pass_by_default() {
        let egress = Egress::default();
        for refused in [
            "127.0.0.1",
            "10.2.3.4",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!egress.allows(ip(refused)), "{refused} passed");
        }
        for allowed in [
            "8.8.8.8",
            "151.101.1.69",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(egress.allows(ip(allowed)), "{allowed} was refused");
        }
    }

    /// A project may be allowed private networks, never one that reaches loopback or
    /// link-local; its allowance widens the node's for its tasks only.
    #[test]
    fn a_project_may_open_private_networks_but_not_the_node_or_the_metadata_service() {
        for refused in [
            "127.0.0.1/32",
            "0.0.0.0/0",
            "0.0.0.0/32",
            "169.254.169.254/32",
            "168.0.0.0/6",
            "::/0",
            "::1/128",
            "fe80::/64",
        ] {
            let error = super::check_project_network(refused).unwrap_err();
            assert!(
                error.contains("only the operator may open"),
                "{refused}: {error}"
            );
        }
        for allowed in ["10.1.0.0/16", "192.168.0.0/16", "fd00::/8"] {
            super::check_project_network(allowed).unwrap();
        }
        let node = Egress::default();
        let project = node.widened(&["10.1.0.0/16".into()]).unwrap();
        assert!(project.allows(ip("10.1.2.3")) && !node.allows(ip("10.1.2.3")));
        assert!(
            node.widened(&["127.0.0.0/8".into()]).is_err(),
            "checked again when used"
        );
    }

    #[test]
    fn allowed_networks_open_exactly_their_block() {
        let egress = Egress::new(&["10.1.0.0/16".into(), "fd00::/8".into()]).unwrap();
        assert!(egress.allows(ip("10.1.200.3")));
        assert!(!egress.allows(ip("10.2.0.1")));
        assert!(egress.allows(ip("fd12::1")));
        assert!(!egress.allows(ip("127.0.0.1")));
        for bad in ["10.0.0.0", "10.0.0.0/33", "localhost/8", "::/129"] {
            let error = Egress::new(&[bad.into()]).unwrap_err();
            assert!(
                error.starts_with(&format!("`{bad}` in agents.egress")),
                "{error}"
            );
        }
    }

    #[test]
    fn urls_naming_a_refused_address_or_scheme_are_refused_before_any_request() {
        let egress = Egress::default();
        let error = egress
            .check_url("url", "http://169.254.169.254/latest/meta-data/")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "input `url`: `169.254.169.254` is a non-public address (169.254.169.254); a task \
             may reach it only if the node allows its network in \
             `agents.egress.allowed_networks` (a private one, the project's \
             owner too: `troupe projects allow-network`)"
        );
        assert!(egress.check_url("url", "http://[::1]:7700/api").is_err());
        assert!(egress.check_url("url", "file:///etc/passwd").is_err());
        assert!(egress.check_url("url", "https://example.com/").is_ok());
    }
}
