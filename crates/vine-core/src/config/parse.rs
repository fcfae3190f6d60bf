//! The config walker: TOML text → [`Config`] plus every [`Diagnostic`].
//!
//! The document is parsed once into a span-preserving tree; each section is
//! then read key by key so that one run reports unknown keys, wrong types,
//! missing keys, bad values and cross-entry conflicts together.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::{
    AllowedPeer, BootstrapPeer, Config, DEFAULT_IDENTITY_PATH, DEFAULT_LISTEN_PORT, DEFAULT_MTU,
    DEFAULT_RUNTIME_DIR, DEFAULT_TUN_NAME, DEFAULT_UNDERLAY_MTU, Diagnostic, LineIndex, Location,
    NodeSection, Parsed, Policy, TunSection, UdpAddress,
};
use crate::net::Ipv4Prefix;
use crate::peer_id::{Fingerprint, PeerId};

const SECTIONS: &[&str] = &["node", "tun", "bootstrap_peers", "allowed_peers", "policy"];
const NODE_KEYS: &[&str] = &[
    "name",
    "network_id",
    "identity_path",
    "listen_address",
    "listen_port",
    "runtime_dir",
    "underlay_mtu",
];
const TUN_KEYS: &[&str] = &["name", "address", "prefix_len", "mtu"];
const BOOTSTRAP_KEYS: &[&str] = &["peer_id", "address"];
const ALLOWED_KEYS: &[&str] = &["peer_id", "prefix", "relay_capable", "name", "fingerprint"];
const POLICY_KEYS: &[&str] = &[
    "strict_allowlist",
    "allow_relay",
    "allow_signaling_upgrade",
    "relay_rate_limit_kbps",
];

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
    let config = if source.len() > super::MAX_CONFIG_BYTES {
        ctx.diags.push(
            Diagnostic::error(
                "file-too-large",
                format!(
                    "the config is {} bytes; vine reads at most {} bytes",
                    source.len(),
                    super::MAX_CONFIG_BYTES
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

struct Ctx<'s> {
    source: &'s str,
    index: LineIndex,
    diags: Vec<Diagnostic>,
    spans: BTreeMap<String, Range<usize>>,
    identity_path: Option<String>,
}

impl Ctx<'_> {
    fn loc(&self, span: &Range<usize>) -> Option<Location> {
        Some(self.index.locate_span(self.source, span))
    }

    fn error(&mut self, span: &Range<usize>, code: &'static str, msg: String, hint: String) {
        let d = Diagnostic::error(code, msg).hint(hint).at(self.loc(span));
        self.diags.push(d);
    }

    fn warn(&mut self, span: &Range<usize>, code: &'static str, msg: String, hint: String) {
        let d = Diagnostic::warning(code, msg).hint(hint).at(self.loc(span));
        self.diags.push(d);
    }

    fn line_of(&self, span: &Range<usize>) -> usize {
        self.index.locate_span(self.source, span).line
    }
}

type Value<'i> = Spanned<DeValue<'i>>;

fn kind(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn integer_value(value: &DeValue<'_>) -> Option<i64> {
    match value {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    }
}

fn suggest<'k>(word: &str, candidates: &[&'k str]) -> Option<&'k str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// One TOML table being read as a vine section.
struct Section<'a, 'i> {
    table: &'a DeTable<'i>,
    /// How users see it: `[tun]`, `[[allowed_peers]] entry #2`.
    title: String,
    /// Key-path prefix: `tun`, `allowed_peers[1]`.
    path: String,
    header: Range<usize>,
    known: &'static [&'static str],
}

impl<'a, 'i> Section<'a, 'i> {
    fn get(&self, key: &str) -> Option<&'a Value<'i>> {
        self.table.get(key)
    }

    fn record(&self, ctx: &mut Ctx<'_>, key: &str, span: &Range<usize>) {
        ctx.spans
            .insert(format!("{}.{key}", self.path), span.clone());
    }

    fn missing(&self, ctx: &mut Ctx<'_>, key: &str, example: &str) {
        ctx.error(
            &self.header,
            "missing-key",
            format!("{} is missing the required key `{key}`", self.title),
            format!("add a line such as `{key} = {example}` to {}", self.title),
        );
    }

    fn wrong_type(&self, ctx: &mut Ctx<'_>, key: &str, v: &Value<'_>, want: &str, example: &str) {
        let mut hint = format!("write it as `{key} = {example}`");
        if let DeValue::String(s) = v.get_ref() {
            let unquotable = (want == "an integer" && s.trim().parse::<i64>().is_ok())
                || (want == "a boolean" && matches!(s.trim(), "true" | "false"));
            if unquotable {
                hint = format!("remove the quotes: `{key} = {}`", s.trim());
            }
        }
        if want == "a string" && !matches!(v.get_ref(), DeValue::String(_)) {
            hint = format!("put the value in double quotes: `{key} = {example}`");
        }
        ctx.error(
            &v.span(),
            "wrong-type",
            format!(
                "`{key}` in {} must be {want}, found {}",
                self.title,
                kind(v.get_ref())
            ),
            hint,
        );
    }

    /// A string value, or `None` after reporting why not.
    fn string(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        required: bool,
        example: &str,
    ) -> Option<(&'a str, Range<usize>)> {
        let Some(v) = self.get(key) else {
            if required {
                self.missing(ctx, key, example);
            }
            return None;
        };
        self.record(ctx, key, &v.span());
        match v.get_ref() {
            DeValue::String(s) => Some((s.as_ref(), v.span())),
            _ => {
                self.wrong_type(ctx, key, v, "a string", example);
                None
            }
        }
    }

    fn integer(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        required: bool,
        example: &str,
    ) -> Option<(i64, Range<usize>)> {
        let Some(v) = self.get(key) else {
            if required {
                self.missing(ctx, key, example);
            }
            return None;
        };
        self.record(ctx, key, &v.span());
        match integer_value(v.get_ref()) {
            Some(n) => Some((n, v.span())),
            None if matches!(v.get_ref(), DeValue::Integer(_)) => {
                let negative =
                    matches!(v.get_ref(), DeValue::Integer(i) if i.as_str().starts_with('-'));
                let size = if negative { "small" } else { "large" };
                ctx.error(
                    &v.span(),
                    "out-of-range",
                    format!("`{key}` in {} is too {size}", self.title),
                    format!("use a value such as `{key} = {example}`"),
                );
                None
            }
            None => {
                self.wrong_type(ctx, key, v, "an integer", example);
                None
            }
        }
    }

    fn ranged(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        required: bool,
        example: &str,
        range: (i64, i64),
        why: &str,
    ) -> Option<(i64, Range<usize>)> {
        let (n, span) = self.integer(ctx, key, required, example)?;
        if n < range.0 || n > range.1 {
            ctx.error(
                &span,
                "out-of-range",
                format!("`{key} = {n}` in {} is out of range", self.title),
                format!("use a value from {} to {}{why}", range.0, range.1),
            );
            return None;
        }
        Some((n, span))
    }

    fn boolean(&self, ctx: &mut Ctx<'_>, key: &str, default: bool) -> Option<bool> {
        let Some(v) = self.get(key) else {
            return Some(default);
        };
        self.record(ctx, key, &v.span());
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(
                    ctx,
                    key,
                    v,
                    "a boolean",
                    if default { "true" } else { "false" },
                );
                None
            }
        }
    }

    /// Reports keys that are not part of this section.
    fn unknown_keys(&self, ctx: &mut Ctx<'_>) {
        for (key, value) in self.table.iter() {
            let name = key.get_ref().as_ref();
            if self.known.contains(&name) {
                continue;
            }
            let hint = if let Some(s) = suggest(name, self.known) {
                format!("did you mean `{s}`?")
            } else if let Some(home) = section_owning(name, self.known) {
                format!("`{name}` belongs in {home}, not {}", self.title)
            } else {
                format!(
                    "remove it; {} accepts: {}",
                    self.title,
                    self.known.join(", ")
                )
            };
            let span = if key.span().is_empty() {
                value.span()
            } else {
                key.span()
            };
            ctx.error(
                &span,
                "unknown-key",
                format!(
                    "unknown key `{}` in {}",
                    name.chars().take(64).collect::<String>(),
                    self.title
                ),
                hint,
            );
        }
    }
}

fn section_owning(key: &str, except: &[&str]) -> Option<&'static str> {
    let all: [(&str, &[&str]); 5] = [
        ("[node]", NODE_KEYS),
        ("[tun]", TUN_KEYS),
        ("[[bootstrap_peers]]", BOOTSTRAP_KEYS),
        ("[[allowed_peers]]", ALLOWED_KEYS),
        ("[policy]", POLICY_KEYS),
    ];
    all.iter()
        .find(|(_, keys)| !std::ptr::eq(*keys, except) && keys.contains(&key))
        .map(|(title, _)| *title)
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
    Some(NodeSection {
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

fn read_policy(ctx: &mut Ctx<'_>, s: &Section<'_, '_>) -> Option<Policy> {
    let d = Policy::default();
    let strict_allowlist = s.boolean(ctx, "strict_allowlist", d.strict_allowlist);
    let allow_relay = s.boolean(ctx, "allow_relay", d.allow_relay);
    let allow_signaling_upgrade =
        s.boolean(ctx, "allow_signaling_upgrade", d.allow_signaling_upgrade);
    let relay_rate_limit_kbps = match s.ranged(
        ctx,
        "relay_rate_limit_kbps",
        false,
        "10000",
        (0, i64::from(super::MAX_RELAY_RATE_LIMIT_KBPS)),
        " kbit/s; 0 means unlimited",
    ) {
        Some((n, span)) => {
            let low = i64::from(super::LOW_RELAY_RATE_LIMIT_KBPS);
            if n > 0 && n < low {
                ctx.warn(
                    &span,
                    "relay-rate-limit-low",
                    format!("`relay_rate_limit_kbps = {n}` leaves relayed sessions too little room for their handshakes and probes"),
                    format!("use {low} or more (kbit/s), or 0 for no limit"),
                );
            }
            u32::try_from(n).ok()
        }
        None if s.get("relay_rate_limit_kbps").is_none() => Some(d.relay_rate_limit_kbps),
        None => None,
    };
    Some(Policy {
        strict_allowlist: strict_allowlist?,
        allow_relay: allow_relay?,
        allow_signaling_upgrade: allow_signaling_upgrade?,
        relay_rate_limit_kbps: relay_rate_limit_kbps?,
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

fn usable_overlay_address(addr: Ipv4Addr) -> Result<(), &'static str> {
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

fn is_private(addr: Ipv4Addr) -> bool {
    let o = addr.octets();
    addr.is_private() || (o[0] == 100 && (64..128).contains(&o[1]))
}

type Problem = (String, String);

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

fn is_dns_name(host: &str) -> bool {
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
