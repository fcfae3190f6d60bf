//! The public side of an identity as other nodes need it: the
//! `export-public` document and the ready-to-paste `[[allowed_peers]]`
//! entry (used by `vine identity export-public` and by `vine demo`, which
//! writes every node's allowlist with it).

use serde::Serialize;

/// What `vine identity export-public` prints: the public record and the
/// prefix the node owns (when a config says so).
#[derive(Serialize)]
pub struct Export {
    /// PeerId, fingerprint, public key and name.
    #[serde(flatten)]
    pub record: vine_core::identity::PublicRecord,
    /// The prefix the node owns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// The `[[allowed_peers]]` entry other nodes paste for `identity`, which
/// owns `prefix` (what `export-public` prints, with `relay_capable` set).
pub fn allowlist_entry(
    identity: &vine_core::identity::Identity,
    name: &str,
    prefix: &str,
    relay_capable: bool,
) -> String {
    let text = allowlist_snippet(&Export {
        record: identity.public_record(Some(name)),
        prefix: Some(prefix.to_owned()),
    });
    if relay_capable {
        text.replace("relay_capable = false", "relay_capable = true")
    } else {
        text
    }
}

/// The text form of `export-public`: a ready-to-paste `[[allowed_peers]]` entry.
pub fn allowlist_snippet(export: &Export) -> String {
    let r = &export.record;
    let mut out = String::new();
    let who = r
        .name
        .as_deref()
        .map_or_else(|| "this node".to_owned(), |n| format!("node \"{n}\""));
    out.push_str(&format!(
        "# vine public identity of {who}; fingerprint {}\n",
        r.fingerprint
    ));
    out.push_str("# Paste this entry into the config of every node that should accept this one.\n");
    out.push_str(&format!("# public_key (X25519) {}\n", r.public_key));
    out.push_str("[[allowed_peers]]\n");
    if let Some(name) = &r.name {
        out.push_str(&format!("name = \"{name}\"\n"));
    }
    out.push_str(&format!("peer_id = \"{}\"\n", r.peer_id));
    out.push_str(&format!("fingerprint = \"{}\"\n", r.fingerprint));
    match &export.prefix {
        Some(prefix) => out.push_str(&format!("prefix = \"{prefix}\"\n")),
        None => out.push_str(
            "# No config was found, so the prefix this node owns is unknown: replace SET-ME\n\
             # with it (the network of its [tun] address/prefix_len), e.g. \"10.42.1.0/24\".\n\
             prefix = \"SET-ME\"\n",
        ),
    }
    out.push_str("relay_capable = false\n");
    out
}
