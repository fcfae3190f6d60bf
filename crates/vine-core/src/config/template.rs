//! The commented config template written by `vine config init`.

use std::net::Ipv4Addr;

use crate::peer_id::PeerId;

/// What goes into a new config.
#[derive(Debug, Clone)]
pub struct TemplateParams {
    /// `[node] name`.
    pub name: String,
    /// `[node] network_id`.
    pub network_id: String,
    /// `[node] identity_path`.
    pub identity_path: String,
    /// `[node] runtime_dir`.
    pub runtime_dir: String,
    /// `[node] listen_port`.
    pub listen_port: u16,
    /// `[tun] name`.
    pub tun_name: String,
    /// `[tun] address`.
    pub address: Ipv4Addr,
    /// `[tun] prefix_len`.
    pub prefix_len: u8,
    /// The local identity, when one exists (shown so operators can copy it).
    pub local: Option<PeerId>,
}

/// Renders a commented config that validates as written (it has warnings —
/// no peers yet — but no errors).
pub fn template(p: &TemplateParams) -> String {
    let identity_note = match p.local {
        Some(id) => format!(
            "# This node: peer_id {id}\n#            fingerprint {}\n# Give other operators the output of `vine identity export-public`.\n",
            id.fingerprint()
        ),
        None => format!(
            "# No identity exists yet at {}: create it with\n#   vine identity init --identity {}\n",
            p.identity_path, p.identity_path
        ),
    };
    let prefix = crate::net::Ipv4Prefix::containing_clamped(p.address, p.prefix_len);
    format!(
        r#"# vine node configuration. Check it with: vine config validate -c <this file>
{identity_note}
[node]
# Operator-facing label: letters, digits and '-'.
name = {name}
# The overlay to join; identical on every node.
network_id = {network_id}
# This node's identity file (mode 0600), made by `vine identity init`.
identity_path = {identity_path}
# Underlay UDP address and port that peers send to.
listen_address = "0.0.0.0"
listen_port = {listen_port}
# Pidfile, state file and control socket live here.
runtime_dir = {runtime_dir}
# The smallest MTU of the underlay links between nodes (1500 on Ethernet,
# 1492 on PPPoE); relayed paths answer bigger packets with ICMP.
# underlay_mtu = 1500
# Relay for others: forward traffic between this node's allowed peers
# when they cannot reach each other directly. Off, this node relays
# nothing, even for peers whose allowlist marks it relay_capable; turn it
# on only on a well-connected node meant to be the relay.
act_as_relay = false

[tun]
name = {tun_name}
# This node's overlay address; with prefix_len it defines the prefix this
# node owns ({prefix}), which every peer must list for this node.
address = "{address}"
prefix_len = {prefix_len}
mtu = 1400

# Peers to contact first to find the network (usually the relay).
# [[bootstrap_peers]]
# peer_id = "vn1..."            # from `vine identity export-public` on that node
# address = "udp://198.51.100.10:4100"

# One entry per peer this node accepts, binding its identity to the one
# prefix it owns. Paste each peer's `vine identity export-public` output here.
# [[allowed_peers]]
# name = "beta"
# peer_id = "vn1..."
# prefix = "10.42.1.0/24"
# relay_capable = false

[policy]
# Refuse sessions from peers that are not in [[allowed_peers]].
strict_allowlist = true
# Fall back to relaying through relay_capable peers when no direct path works.
allow_relay = true
# Punch holes through NATs with help from a signaling peer.
allow_signaling_upgrade = true
# When this node relays for others (act_as_relay): most kbit/s forwarded
# per (source, destination) pair, and per source over all its destinations;
# frames over either cap are dropped and counted. 0 = unlimited.
relay_rate_limit_kbps = 0
relay_source_rate_limit_kbps = 50000
"#,
        name = toml_str(&p.name),
        network_id = toml_str(&p.network_id),
        identity_path = toml_str(&p.identity_path),
        listen_port = p.listen_port,
        runtime_dir = toml_str(&p.runtime_dir),
        tun_name = toml_str(&p.tun_name),
        address = p.address,
        prefix_len = p.prefix_len,
    )
}

/// `s` as a TOML basic string, quotes included, so any value the caller
/// passes stays one string (the validator then judges its content).
fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
