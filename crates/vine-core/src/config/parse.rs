//! The config walker: TOML text → [`Config`] plus every [`Diagnostic`].
//!
//! The document is parsed once into a span-preserving tree; each section is
//! then read key by key so that one run reports unknown keys, wrong types,
//! missing keys, bad values and cross-entry conflicts together.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::diagnostic::{Diagnostic, LineIndex};
use super::document::*;
use super::model::{
    AllowedPeer, BootstrapPeer, Config, DEFAULT_IDENTITY_PATH, DEFAULT_LISTEN_PORT, DEFAULT_MTU,
    DEFAULT_RUNTIME_DIR, DEFAULT_TUN_NAME, DEFAULT_UNDERLAY_MTU, MAX_CONFIG_BYTES, NodeSection,
    Parsed, Policy, TunSection,
};
use super::policy::{check_relaying, read_policy};
use super::validate::*;
use crate::net::Ipv4Prefix;
use crate::peer_id::{Fingerprint, PeerId};

/// Smallest and largest accepted TUN MTU.
const MTU_RANGE: (i64, i64) = (576, 9000);
/// What the underlay needs beyond the TUN MTU: IPv4 20 + UDP 8 + WireGuard
/// 32 + framing 20 (1420 fits a 1500-byte underlay).
const MTU_UNDERLAY_OVERHEAD: i64 = 80;
/// Accepted overlay prefix lengths.
const PREFIX_LEN_RANGE: (i64, i64) = (8, 32);

/// Parses and validates a config file's text. Never panics.
pub fn parse(source: &str) -> Parsed {
    let mut ctx = Ctx {
        source,
        index: LineIndex::new(source),
        diags: Vec::new(),
        spans: BTreeMap::new(),
        identity_path: None,
    };
    let config = if source.len() > MAX_CONFIG_BYTES {
        ctx.diags.push(
            Diagnostic::error(
                "file-too-large",
                format!(
                    "the config is {} bytes; vine reads at most {} bytes",
                    source.len(),
                    MAX_CONFIG_BYTES
                ),
            )
            .hint("is this the right file? a vine config is a few kilobytes"),
        );
        None
    } else {
        let (root, errors) = DeTable::parse_recoverable(source);
        let syntax_ok = errors.is_empty();
        for e in &errors {
            let location = e.span().map(|s| ctx.index.locate(source, s.start));
            ctx.diags.push(
                Diagnostic::error("syntax", format!("TOML syntax: {}", e.message().trim()))
                    .hint("fix the TOML syntax at this place; strings need double quotes, sections look like [tun] or [[allowed_peers]]")
                    .at(location),
            );
        }
        let config = read_document(&mut ctx, root.get_ref(), syntax_ok);
        if syntax_ok { config } else { None }
    };
    let mut parsed = Parsed {
        config: None,
        diagnostics: ctx.diags,
        spans: ctx.spans,
        identity_path: ctx.identity_path,
        index: ctx.index,
        source: source.to_owned(),
    };
    parsed.sort();
    if !parsed.has_errors() {
        parsed.config = config;
    }
    parsed
}

fn read_document(ctx: &mut Ctx<'_>, root: &DeTable<'_>, syntax_ok: bool) -> Option<Config> {
    for (key, value) in root.iter() {
        let name = key.get_ref().as_ref();
        if SECTIONS.contains(&name) {
            continue;
        }
        let hint = if let Some(home) = section_owning(name, &[]) {
            format!("`{name}` must be written inside {home}")
        } else if let Some(s) = suggest(name, SECTIONS) {
            format!("did you mean [{s}]?")
        } else {
            "vine configs have the sections [node], [tun], [[bootstrap_peers]], [[allowed_peers]] and [policy]".to_owned()
        };
        let span = if key.span().is_empty() {
            value.span()
        } else {
            key.span()
        };
        ctx.error(
            &span,
            "unknown-section",
            format!(
                "unknown top-level key or section `{}`",
                name.chars().take(64).collect::<String>()
            ),
            hint,
        );
    }

    let node = section(ctx, root, "node", NODE_KEYS, syntax_ok).and_then(|s| read_node(ctx, &s));
    let underlay_mtu = node
        .as_ref()
        .map_or(DEFAULT_UNDERLAY_MTU, |n| n.underlay_mtu);
    let tun = section(ctx, root, "tun", TUN_KEYS, syntax_ok)
        .and_then(|s| read_tun(ctx, &s, underlay_mtu));
    let policy = match section(ctx, root, "policy", POLICY_KEYS, false) {
        Some(s) => read_policy(ctx, &s),
        None if root.get("policy").is_some() => None,
        None => Some(Policy::default()),
    };
    if let (Some(node), Some(policy)) = (&node, &policy) {
        check_relaying(ctx, node, policy);
    }
    let bootstrap = entries(ctx, root, "bootstrap_peers", BOOTSTRAP_KEYS).map(|list| {
        list.iter()
            .map(|s| read_bootstrap(ctx, s))
            .collect::<Vec<_>>()
    });
    let allowed = entries(ctx, root, "allowed_peers", ALLOWED_KEYS).map(|list| {
        list.iter()
            .map(|s| read_allowed(ctx, s))
            .collect::<Vec<_>>()
    });

    let local_prefix = tun.as_ref().map(TunSection::local_prefix);
    if let Some(allowed) = &allowed {
        check_allowed_conflicts(ctx, allowed, local_prefix);
    }
    if let Some(bootstrap) = &bootstrap {
        check_bootstrap_conflicts(ctx, bootstrap);
    }
    // After a syntax error the recovered document may have lost entries, so
    // warnings about what the lists lack would be guesses.
    if let (Some(policy), Some(allowed), Some(bootstrap), true) =
        (&policy, &allowed, &bootstrap, syntax_ok)
    {
        check_policy(ctx, policy, allowed, bootstrap);
    }

    let allowed_peers = allowed?
        .into_iter()
        .map(|e| e.map(|e| e.peer))
        .collect::<Option<Vec<_>>>()?;
    let bootstrap_peers = bootstrap?
        .into_iter()
        .map(|e| e.map(|e| e.peer))
        .collect::<Option<Vec<_>>>()?;
    Some(Config {
        node: node?,
        tun: tun?,
        bootstrap_peers,
        allowed_peers,
        policy: policy?,
    })
}

/// The single table `[name]`; reports it missing (when required) or mistyped.
fn section<'a, 'i>(
    ctx: &mut Ctx<'_>,
    root: &'a DeTable<'i>,
    name: &str,
    known: &'static [&'static str],
    required: bool,
) -> Option<Section<'a, 'i>> {
    let title = format!("[{name}]");
    let Some(value) = root.get(name) else {
        if required {
            ctx.diags.push(
                Diagnostic::error("missing-section", format!("the config has no {title} section"))
                    .hint(match name {
                        "node" => "add a [node] section with at least `name` and `network_id`; `vine config init` writes a complete template",
                        _ => "add a [tun] section with at least `address` and `prefix_len`; `vine config init` writes a complete template",
                    }),
            );
        }
        return None;
    };
    match value.get_ref() {
        DeValue::Table(table) => {
            let s = Section {
                table,
                title,
                path: name.to_owned(),
                header: value.span(),
                known,
            };
            s.unknown_keys(ctx);
            Some(s)
        }
        other => {
            ctx.error(
                &value.span(),
                "wrong-type",
                format!("`{name}` must be a section, found {}", kind(other)),
                format!("write it as a section header `[{name}]` followed by its keys"),
            );
            None
        }
    }
}

/// The entries of the array of tables `[[name]]`; an absent key is an empty list.
fn entries<'a, 'i>(
    ctx: &mut Ctx<'_>,
    root: &'a DeTable<'i>,
    name: &str,
    known: &'static [&'static str],
) -> Option<Vec<Section<'a, 'i>>> {
    let Some(value) = root.get(name) else {
        return Some(Vec::new());
    };
    let DeValue::Array(items) = value.get_ref() else {
        ctx.error(
            &value.span(),
            "wrong-type",
            format!(
                "`{name}` must be a list of entries, found {}",
                kind(value.get_ref())
            ),
            format!("start each entry with `[[{name}]]` (double brackets), not `[{name}]`"),
        );
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match item.get_ref() {
            DeValue::Table(table) => {
                let s = Section {
                    table,
                    title: format!("[[{name}]] entry #{}", i + 1),
                    path: format!("{name}[{i}]"),
                    header: item.span(),
                    known,
                };
                s.unknown_keys(ctx);
                out.push(s);
            }
            other => {
                ok = false;
                ctx.error(
                    &item.span(),
                    "wrong-type",
                    format!(
                        "entry #{} of `{name}` must be a table, found {}",
                        i + 1,
                        kind(other)
                    ),
                    format!("start each entry with `[[{name}]]` followed by its keys"),
                );
            }
        }
    }
    ok.then_some(out)
}

fn absolute_path(
    ctx: &mut Ctx<'_>,
    s: &Section<'_, '_>,
    key: &str,
    default: &str,
) -> Option<String> {
    let Some((path, span)) = s.string(ctx, key, false, &format!("\"{default}\"")) else {
        return s.get(key).is_none().then(|| default.to_owned());
    };
    if !path.starts_with('/') || path.contains('\0') {
        ctx.error(
            &span,
            "relative-path",
            format!(
                "`{key} = \"{}\"` is not an absolute path",
                path.escape_debug()
            ),
            format!("write the full path starting with `/`, e.g. `{key} = \"{default}\"`"),
        );
        return None;
    }
    Some(path.to_owned())
}

fn read_node(ctx: &mut Ctx<'_>, s: &Section<'_, '_>) -> Option<NodeSection> {
    let name = s
        .string(ctx, "name", true, "\"alpha\"")
        .and_then(|(v, span)| {
            validate_node_name(v)
                .map_err(|(msg, hint)| ctx.error(&span, "invalid-name", msg, hint))
                .ok()
                .map(|()| v.to_owned())
        });
    let network_id = s
        .string(ctx, "network_id", true, "\"home-net\"")
        .and_then(|(v, span)| {
            validate_network_id(v)
                .map_err(|(msg, hint)| ctx.error(&span, "invalid-network-id", msg, hint))
                .ok()
                .map(|()| v.to_owned())
        });
    let identity_path = absolute_path(ctx, s, "identity_path", DEFAULT_IDENTITY_PATH);
    ctx.identity_path.clone_from(&identity_path);
    let runtime_dir = absolute_path(ctx, s, "runtime_dir", DEFAULT_RUNTIME_DIR);
    let listen_address = match s.string(ctx, "listen_address", false, "\"0.0.0.0\"") {
        None if s.get("listen_address").is_none() => Some(Ipv4Addr::UNSPECIFIED),
        None => None,
        Some((v, span)) => match v.parse::<Ipv4Addr>() {
            Ok(a) if !a.is_multicast() && !a.is_broadcast() => Some(a),
            _ => {
                ctx.error(
                    &span,
                    "invalid-address",
                    format!("`listen_address = \"{}\"` is not a unicast IPv4 address", v.escape_debug()),
                    "use \"0.0.0.0\" to listen on every interface, or one of this host's IPv4 addresses".into(),
                );
                None
            }
        },
    };
    let listen_port = match s.ranged(
        ctx,
        "listen_port",
        false,
        "4100",
        (1, 65535),
        "; peers must know the port, so 0 (any port) is not allowed",
    ) {
        Some((n, _)) => u16::try_from(n).ok(),
        None if s.get("listen_port").is_none() => Some(DEFAULT_LISTEN_PORT),
        None => None,
    };
    let underlay_mtu = match s.ranged(
        ctx,
        "underlay_mtu",
        false,
        "1500",
        MTU_RANGE,
        " (the smallest MTU of the links between nodes: 1500 on Ethernet, 1492 on PPPoE)",
    ) {
        Some((n, _)) => u16::try_from(n).ok(),
        None if s.get("underlay_mtu").is_none() => Some(DEFAULT_UNDERLAY_MTU),
        None => None,
    };
    let act_as_relay = s.boolean(ctx, "act_as_relay", false);
    Some(NodeSection {
        act_as_relay: act_as_relay?,
        name: name?,
        network_id: network_id?,
        identity_path: identity_path?,
        listen_address: listen_address?,
        listen_port: listen_port?,
        runtime_dir: runtime_dir?,
        underlay_mtu: underlay_mtu?,
    })
}

fn read_tun(ctx: &mut Ctx<'_>, s: &Section<'_, '_>, underlay_mtu: u16) -> Option<TunSection> {
    let name = match s.string(ctx, "name", false, "\"vine0\"") {
        None if s.get("name").is_none() => Some(DEFAULT_TUN_NAME.to_owned()),
        None => None,
        Some((v, span)) => validate_tun_name(v)
            .map_err(|(msg, hint)| ctx.error(&span, "invalid-tun-name", msg, hint))
            .ok()
            .map(|()| v.to_owned()),
    };
    let mtu = match s.ranged(ctx, "mtu", false, "1400", MTU_RANGE, "") {
        Some((n, span)) => {
            let underlay = i64::from(underlay_mtu);
            let fits = underlay - MTU_UNDERLAY_OVERHEAD;
            if n > fits {
                ctx.warn(
                    &span,
                    "mtu-exceeds-underlay",
                    format!("`mtu = {n}` needs an underlay MTU above {underlay}"),
                    format!("keep mtu at {fits} or less unless every underlay link carries bigger frames (then raise [node] underlay_mtu)"),
                );
            }
            u16::try_from(n).ok()
        }
        None if s.get("mtu").is_none() => Some(DEFAULT_MTU),
        None => None,
    };
    let prefix_len = s
        .ranged(
            ctx,
            "prefix_len",
            true,
            "24",
            PREFIX_LEN_RANGE,
            " (a /24 gives the node 254 overlay addresses)",
        )
        .and_then(|(n, _)| u8::try_from(n).ok());
    let address = s.string(ctx, "address", true, "\"10.42.0.1\"").and_then(|(v, span)| {
        let hint_cidr = v.split_once('/');
        let Ok(addr) = v.parse::<Ipv4Addr>() else {
            let hint = match hint_cidr {
                Some((a, l)) => format!("write the address and its length separately: `address = \"{a}\"` and `prefix_len = {l}`"),
                None => "write an IPv4 address such as \"10.42.0.1\"".to_owned(),
            };
            ctx.error(&span, "invalid-address", format!("`address = \"{}\"` is not an IPv4 address", v.escape_debug()), hint);
            return None;
        };
        if let Err(why) = usable_overlay_address(addr) {
            ctx.error(&span, "invalid-address", format!("`address = \"{addr}\"` cannot be an overlay address: it is {why}"), "use an address from a private range such as 10.42.0.1 or 100.64.0.1".into());
            return None;
        }
        if let Some(len) = prefix_len {
            let prefix = Ipv4Prefix::containing_clamped(addr, len);
            if len <= 30 && (addr == prefix.network() || addr == prefix.last()) {
                let which = if addr == prefix.network() { "network" } else { "broadcast" };
                ctx.error(
                    &span,
                    "address-not-host",
                    format!("`address = \"{addr}\"` is the {which} address of its prefix {prefix}"),
                    format!("use a host address inside {prefix}, e.g. \"{}\"", Ipv4Addr::from(u32::from(prefix.network()) + 1)),
                );
                return None;
            }
            if !is_private(addr) {
                ctx.warn(
                    &span,
                    "public-overlay-range",
                    format!("the overlay prefix {prefix} is public address space"),
                    "hosts on the overlay will no longer reach the real owners of those addresses; prefer 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or 100.64.0.0/10".into(),
                );
            }
        }
        Some(addr)
    });
    Some(TunSection {
        name: name?,
        address: address?,
        prefix_len: prefix_len?,
        mtu: mtu?,
    })
}

/// A parsed entry plus where its parts were written.
struct Entry<T> {
    peer: T,
    peer_id_span: Range<usize>,
    other_span: Option<Range<usize>>,
}

fn read_peer_id(ctx: &mut Ctx<'_>, s: &Section<'_, '_>) -> Option<(PeerId, Range<usize>)> {
    let (v, span) = s.string(
        ctx,
        "peer_id",
        true,
        "\"vn1…\" (from `vine identity export-public`)",
    )?;
    match v.parse::<PeerId>() {
        Ok(id) => Some((id, span)),
        Err(e) => {
            ctx.error(
                &span,
                "invalid-peer-id",
                format!("`peer_id` in {}: {e}", s.title),
                e.hint().to_owned(),
            );
            None
        }
    }
}

fn read_bootstrap(ctx: &mut Ctx<'_>, s: &Section<'_, '_>) -> Option<Entry<BootstrapPeer>> {
    let peer_id = read_peer_id(ctx, s);
    let address = s
        .string(ctx, "address", true, "\"udp://198.51.100.10:4100\"")
        .and_then(|(v, span)| match parse_udp_address(v) {
            Ok(a) => Some((a, span)),
            Err((msg, hint)) => {
                ctx.error(&span, "invalid-bootstrap-address", msg, hint);
                None
            }
        });
    let (peer_id, peer_id_span) = peer_id?;
    let (address, span) = address?;
    Some(Entry {
        peer: BootstrapPeer { peer_id, address },
        peer_id_span,
        other_span: Some(span),
    })
}

fn read_allowed(ctx: &mut Ctx<'_>, s: &Section<'_, '_>) -> Option<Entry<AllowedPeer>> {
    let peer_id = read_peer_id(ctx, s);
    let prefix = s
        .string(ctx, "prefix", true, "\"10.42.1.0/24\"")
        .and_then(|(v, span)| match v.parse::<Ipv4Prefix>() {
            Ok(p) if p.len() < PREFIX_LEN_RANGE.0 as u8 => {
                ctx.error(
                    &span,
                    "out-of-range",
                    format!("prefix {p} is too wide for one peer"),
                    format!(
                        "give each peer a prefix of length {} to 32, e.g. a /24",
                        PREFIX_LEN_RANGE.0
                    ),
                );
                None
            }
            Ok(p) => {
                let unusable = usable_overlay_address(p.network())
                    .and_then(|()| usable_overlay_address(p.last()));
                if let Err(why) = unusable {
                    ctx.error(
                        &span,
                        "invalid-prefix",
                        format!("prefix {p} cannot be an overlay prefix: it reaches an address that is {why}"),
                        "give the peer a prefix from a private range, e.g. \"10.42.1.0/24\"".into(),
                    );
                    return None;
                }
                if !is_private(p.network()) || !is_private(p.last()) {
                    ctx.warn(
                        &span,
                        "public-overlay-range",
                        format!("prefix {p} is public address space"),
                        "routing it into the overlay hides the real owners of those addresses; prefer 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or 100.64.0.0/10".into(),
                    );
                }
                Some((p, span))
            }
            Err(crate::net::PrefixError::HostBitsSet { given, canonical }) => {
                ctx.error(
                    &span,
                    "invalid-prefix",
                    format!("prefix `{given}` has host bits set"),
                    format!("did you mean \"{canonical}\"?"),
                );
                None
            }
            Err(e) => {
                ctx.error(
                    &span,
                    "invalid-prefix",
                    format!("`prefix` in {}: {e}", s.title),
                    "write the prefix the peer owns, e.g. \"10.42.1.0/24\"".into(),
                );
                None
            }
        });
    let relay_capable = s.boolean(ctx, "relay_capable", false);
    let name = match s.string(ctx, "name", false, "\"beta\"") {
        None if s.get("name").is_none() => Some(None),
        None => None,
        Some((v, span)) => match validate_node_name(v) {
            Ok(()) => Some(Some(v.to_owned())),
            Err((msg, hint)) => {
                ctx.error(&span, "invalid-name", msg, hint);
                None
            }
        },
    };
    let fingerprint = match s.string(ctx, "fingerprint", false, "\"3f2a-9c01-77be-0d41-a5e2\"") {
        None if s.get("fingerprint").is_none() => Some(None),
        None => None,
        Some((v, span)) => match v.parse::<Fingerprint>() {
            Ok(fp) => match &peer_id {
                Some((id, _)) if id.fingerprint() != fp => {
                    ctx.error(
                        &span,
                        "fingerprint-mismatch",
                        format!("fingerprint {fp} does not belong to this entry's peer_id (whose fingerprint is {})", id.fingerprint()),
                        "peer_id and fingerprint were copied from different nodes; paste both again from that node's `vine identity export-public`".into(),
                    );
                    None
                }
                _ => Some(Some(fp)),
            },
            Err(e) => {
                ctx.error(
                    &span,
                    "invalid-fingerprint",
                    e.to_string(),
                    "copy it from `vine identity fingerprint` on that node, or remove the line"
                        .into(),
                );
                None
            }
        },
    };
    let (peer_id, peer_id_span) = peer_id?;
    let (prefix, prefix_span) = prefix?;
    Some(Entry {
        peer: AllowedPeer {
            peer_id,
            prefix,
            relay_capable: relay_capable?,
            name: name?,
            fingerprint: fingerprint?,
        },
        peer_id_span,
        other_span: Some(prefix_span),
    })
}

fn check_allowed_conflicts(
    ctx: &mut Ctx<'_>,
    allowed: &[Option<Entry<AllowedPeer>>],
    local: Option<Ipv4Prefix>,
) {
    let entries: Vec<&Entry<AllowedPeer>> = allowed.iter().flatten().collect();
    for (i, e) in entries.iter().enumerate() {
        let prefix_span = e
            .other_span
            .clone()
            .unwrap_or_else(|| e.peer_id_span.clone());
        if let Some(first) = entries[..i]
            .iter()
            .find(|o| o.peer.peer_id == e.peer.peer_id)
        {
            let line = ctx.line_of(&first.peer_id_span);
            ctx.error(
                &e.peer_id_span,
                "duplicate-peer",
                format!(
                    "peer {} is already enrolled at line {line}",
                    e.peer.peer_id.short()
                ),
                "each peer owns exactly one prefix: keep one entry for it".into(),
            );
        }
        if let Some(other) = entries[..i]
            .iter()
            .find(|o| o.peer.prefix.overlaps(&e.peer.prefix))
        {
            let line = ctx.line_of(&other.peer_id_span);
            ctx.error(
                &prefix_span,
                "overlapping-prefix",
                format!(
                    "prefix {} overlaps {} of the peer at line {line}",
                    e.peer.prefix, other.peer.prefix
                ),
                "give every peer a prefix of its own; two owners for one address cannot be routed"
                    .into(),
            );
        }
        if let Some(local) = local.filter(|l| l.overlaps(&e.peer.prefix)) {
            ctx.error(
                &prefix_span,
                "overlapping-local-prefix",
                format!(
                    "prefix {} overlaps this node's own prefix {local} (from [tun])",
                    e.peer.prefix
                ),
                "give the peer a prefix outside this node's, or change [tun] address/prefix_len"
                    .into(),
            );
        }
    }
}

fn check_bootstrap_conflicts(ctx: &mut Ctx<'_>, bootstrap: &[Option<Entry<BootstrapPeer>>]) {
    let entries: Vec<&Entry<BootstrapPeer>> = bootstrap.iter().flatten().collect();
    for (i, e) in entries.iter().enumerate() {
        if let Some(first) = entries[..i]
            .iter()
            .find(|o| o.peer.peer_id == e.peer.peer_id)
        {
            let line = ctx.line_of(&first.peer_id_span);
            ctx.error(
                &e.peer_id_span,
                "duplicate-peer",
                format!(
                    "bootstrap peer {} is already listed at line {line}",
                    e.peer.peer_id.short()
                ),
                "list each bootstrap peer once".into(),
            );
        }
        if let Some(first) = entries[..i]
            .iter()
            .find(|o| o.peer.address == e.peer.address)
        {
            let line = ctx.line_of(&first.peer_id_span);
            let span = e
                .other_span
                .clone()
                .unwrap_or_else(|| e.peer_id_span.clone());
            ctx.warn(
                &span,
                "duplicate-address",
                format!("bootstrap address {} is also used at line {line}", e.peer.address),
                "two peers rarely share one address and port; check that each entry points at its own peer".into(),
            );
        }
    }
}

fn check_policy(
    ctx: &mut Ctx<'_>,
    policy: &Policy,
    allowed: &[Option<Entry<AllowedPeer>>],
    bootstrap: &[Option<Entry<BootstrapPeer>>],
) {
    // Warnings about what the lists lack are only made when every entry was
    // understood; an entry with errors is already reported.
    let allowed_ok = allowed.iter().all(Option::is_some);
    let entries_ok = allowed_ok && bootstrap.iter().all(Option::is_some);
    let listed = !allowed.is_empty();
    let allowed: Vec<&Entry<AllowedPeer>> = allowed.iter().flatten().collect();
    let policy_span = ctx.spans.get("policy.allow_relay").cloned();
    let file_level = |d: Diagnostic, span: Option<&Range<usize>>, ctx: &mut Ctx<'_>| {
        let d = d.at(span.and_then(|s| ctx.loc(s)));
        ctx.diags.push(d);
    };
    if !listed {
        file_level(
            Diagnostic::warning("no-allowed-peers", "[[allowed_peers]] is empty, so this node will not exchange traffic with anyone")
                .hint("add one [[allowed_peers]] entry per peer, from each peer's `vine identity export-public`"),
            None,
            ctx,
        );
    } else if entries_ok && policy.allow_relay && !allowed.iter().any(|e| e.peer.relay_capable) {
        file_level(
            Diagnostic::warning("relay-without-relay-peer", "allow_relay = true, but no allowed peer has relay_capable = true, so there is no relay to fall back to")
                .hint("set relay_capable = true on a well-connected peer, or set allow_relay = false to say so explicitly"),
            policy_span.as_ref(),
            ctx,
        );
    }
    if policy.allow_signaling_upgrade && bootstrap.is_empty() && listed {
        let span = ctx.spans.get("policy.allow_signaling_upgrade").cloned();
        file_level(
            Diagnostic::warning("signaling-without-bootstrap", "allow_signaling_upgrade = true, but there are no [[bootstrap_peers]] to signal through")
                .hint("add a bootstrap peer that every node can reach (often the relay), or set allow_signaling_upgrade = false"),
            span.as_ref(),
            ctx,
        );
    }
    // A bootstrap peer whose allowlist entry has an error is listed, not missing.
    if policy.strict_allowlist && allowed_ok {
        for b in bootstrap.iter().flatten() {
            if !allowed.iter().any(|a| a.peer.peer_id == b.peer.peer_id) {
                ctx.warn(
                    &b.peer_id_span,
                    "bootstrap-not-allowlisted",
                    format!("bootstrap peer {} is not in [[allowed_peers]], and strict_allowlist = true refuses sessions with unlisted peers", b.peer.peer_id.short()),
                    "add it to [[allowed_peers]] with the prefix it owns, or set strict_allowlist = false".into(),
                );
            }
        }
    }
}
