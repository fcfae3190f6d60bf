//! Value checks the config walker and other crates share: node, network
//! and TUN names, overlay addresses and `host:port` UDP addresses.

use std::net::Ipv4Addr;

use super::model::UdpAddress;

pub(super) fn usable_overlay_address(addr: Ipv4Addr) -> Result<(), &'static str> {
    let o = addr.octets();
    if addr.is_unspecified() || o[0] == 0 {
        Err("in 0.0.0.0/8 (\"this network\")")
    } else if addr.is_loopback() {
        Err("a loopback address")
    } else if addr.is_multicast() {
        Err("a multicast address")
    } else if addr.is_broadcast() || o[0] >= 240 {
        Err("in the reserved range 240.0.0.0/4")
    } else if addr.is_link_local() {
        Err("a link-local address")
    } else {
        Ok(())
    }
}

pub(super) fn is_private(addr: Ipv4Addr) -> bool {
    let o = addr.octets();
    addr.is_private() || (o[0] == 100 && (64..128).contains(&o[1]))
}

pub(super) type Problem = (String, String);

/// Checks a node name: a DNS label (letters, digits, `-`; 1–63 characters;
/// no leading or trailing `-`), so it can become a DNS name later.
pub fn validate_node_name(name: &str) -> Result<(), Problem> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err((
            format!("node name \"{}\" is not a valid name", name.escape_debug()),
            "use 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen, e.g. \"alpha\" or \"relay-1\"".into(),
        ))
    }
}

/// Checks a network id: 1–64 characters of `a-z 0-9 - _ .`, starting and
/// ending with a letter or digit.
pub fn validate_network_id(id: &str) -> Result<(), Problem> {
    let edge = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
        && edge(id.bytes().next())
        && edge(id.bytes().last());
    if ok {
        return Ok(());
    }
    let lower = id.to_ascii_lowercase();
    let hint = if lower != id && validate_network_id(&lower).is_ok() {
        format!(
            "network ids are lowercase: did you mean \"{lower}\"? (every node must use the same id)"
        )
    } else {
        "use 1 to 64 lowercase letters, digits, '-', '_' or '.', starting and ending with a letter or digit, e.g. \"home-net\"; every node of the overlay must use the same id".to_owned()
    };
    Err((
        format!(
            "network_id \"{}\" is not a valid network id",
            id.escape_debug()
        ),
        hint,
    ))
}

/// Checks a Linux interface name: 1–15 bytes, not `.` or `..`, and no `/`,
/// `:`, `%`, whitespace or control characters (the kernel's rules, plus `%`,
/// which would be taken as a name template).
pub fn validate_tun_name(name: &str) -> Result<(), Problem> {
    let why = if name.is_empty() {
        Some("it is empty".to_owned())
    } else if name.len() > 15 {
        Some(format!(
            "it is {} bytes long and Linux allows at most 15",
            name.len()
        ))
    } else if name == "." || name == ".." {
        Some("`.` and `..` are not interface names".to_owned())
    } else {
        name.chars()
            .find(|c| {
                matches!(c, '/' | ':' | '%') || c.is_whitespace() || c.is_control() || !c.is_ascii()
            })
            .map(|c| format!("it contains {c:?}"))
    };
    match why {
        None => Ok(()),
        Some(why) => Err((
            format!(
                "TUN name \"{}\" is not a valid Linux interface name: {why}",
                name.escape_debug()
            ),
            "use up to 15 letters, digits, '-', '_' or '.', e.g. \"vine0\"".into(),
        )),
    }
}

/// Parses `udp://HOST:PORT` where HOST is an IPv4 address or a DNS name.
pub fn parse_udp_address(text: &str) -> Result<UdpAddress, Problem> {
    let shown = text.escape_debug().to_string();
    let Some(rest) = text.strip_prefix("udp://") else {
        let hint = match text.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("udp") => {
                format!("write the scheme in lowercase: \"udp://{rest}\"")
            }
            Some((scheme, rest)) => {
                format!("vine only speaks UDP: write \"udp://{rest}\" (not {scheme}://)")
            }
            None => format!("add the scheme: \"udp://{text}\""),
        };
        return Err((
            format!("bootstrap address \"{shown}\" does not start with udp://"),
            hint,
        ));
    };
    let example = "write it as \"udp://HOST:PORT\", e.g. \"udp://198.51.100.10:4100\"";
    if rest.starts_with('[') {
        return Err((
            format!(
                "bootstrap address \"{shown}\" is IPv6, which vine's underlay does not support yet"
            ),
            "use the peer's IPv4 address or a DNS name that resolves to it".into(),
        ));
    }
    let Some((host, port)) = rest.rsplit_once(':') else {
        return Err((
            format!("bootstrap address \"{shown}\" has no port"),
            format!("{example}; vine's default port is 4100"),
        ));
    };
    let port = match port.parse::<u16>() {
        Ok(p) if p != 0 && !port.starts_with('+') => p,
        _ => {
            return Err((
                format!("bootstrap address \"{shown}\" has an invalid port"),
                format!("{example}; ports are 1 to 65535"),
            ));
        }
    };
    let host_ok = host.parse::<Ipv4Addr>().is_ok() || is_dns_name(host);
    if !host_ok
        || host
            .parse::<Ipv4Addr>()
            .is_ok_and(|a| a.is_unspecified() || a.is_multicast() || a.is_broadcast())
    {
        return Err((
            format!(
                "bootstrap address \"{shown}\" has an invalid host \"{}\"",
                host.escape_debug()
            ),
            example.into(),
        ));
    }
    Ok(UdpAddress {
        host: host.to_owned(),
        port,
    })
}

pub(super) fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && !host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}
