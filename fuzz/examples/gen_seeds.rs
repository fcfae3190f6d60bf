//! Regenerates the committed seed corpora under `fuzz/seeds/`.
//!
//! Run from `fuzz/`: `cargo run --example gen_seeds`. The output is
//! deterministic (fixed seeds), so re-running it only changes the files when
//! vine-core's formats change.

use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;

use vine_core::Identity;
use vine_core::config::{self, TemplateParams};

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let me = Identity::from_seed([7; 32]);
    let beta = Identity::from_seed([8; 32]);
    let relay = Identity::from_seed([9; 32]);

    let write = |target: &str, name: &str, text: &str| -> std::io::Result<()> {
        let dir = root.join(target);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join(name), text)
    };

    // config_parse ----------------------------------------------------------
    let full = format!(
        r#"# vine node configuration
[node]
name = "alpha"
network_id = "home-net"
identity_path = "/var/lib/libvine/identity"
listen_address = "0.0.0.0"
listen_port = 4100
runtime_dir = "/run/libvine"

[tun]
name = "vine0"
address = "10.42.0.1"
prefix_len = 24
mtu = 1400

[[bootstrap_peers]]
peer_id = "{relay}"
address = "udp://198.51.100.10:4100"

[[bootstrap_peers]]
peer_id = "{beta}"
address = "udp://beta.example.net:4101"

[[allowed_peers]]
name = "relay"
peer_id = "{relay}"
prefix = "10.42.9.0/24"
relay_capable = true
fingerprint = "{relay_fp}"

[[allowed_peers]]
name = "beta"
peer_id = "{beta}"
prefix = "10.42.1.0/24"
relay_capable = false

[policy]
strict_allowlist = true
allow_relay = true
allow_signaling_upgrade = true
"#,
        relay = relay.peer_id(),
        relay_fp = relay.fingerprint(),
        beta = beta.peer_id(),
    );
    assert!(
        !config::parse(&full).has_errors(),
        "full seed must be valid"
    );
    write("config_parse", "valid-full.toml", &full)?;

    let template = config::template(&TemplateParams {
        name: "alpha".into(),
        network_id: "home-net".into(),
        identity_path: config::DEFAULT_IDENTITY_PATH.into(),
        runtime_dir: config::DEFAULT_RUNTIME_DIR.into(),
        listen_port: config::DEFAULT_LISTEN_PORT,
        tun_name: config::DEFAULT_TUN_NAME.into(),
        address: Ipv4Addr::new(10, 42, 0, 1),
        prefix_len: 24,
        local: Some(me.peer_id()),
    });
    assert!(
        !config::parse(&template).has_errors(),
        "template must be valid"
    );
    write("config_parse", "template.toml", &template)?;

    let minimal = "[node]\nname = \"a\"\nnetwork_id = \"n\"\n[tun]\naddress = \"10.0.0.1\"\nprefix_len = 24\n";
    write("config_parse", "minimal.toml", minimal)?;

    // Many findings at once: typos, wrong types, conflicts, bad values.
    let broken = format!(
        r#"[nod]
[node]
name = "-bad-"
network_id = "Home-Net"
identity_path = "relative/identity"
listen_address = "224.0.0.1"
listen_port = "4100"
adress = 1
[tun]
name = "this-name-is-far-too-long"
address = "10.42.0.0/24"
prefix_len = 0x40
mtu = 9001
[[bootstrap_peers]]
peer_id = "beta"
address = "tcp://[::1]:0"
[[bootstrap_peers]]
peer_id = "{beta}"
address = "udp://198.51.100.10:+80"
[[allowed_peers]]
peer_id = "{beta}"
prefix = "10.42.1.5/24"
fingerprint = "3f2a-9c01-77be-0d41-a5e2"
[[allowed_peers]]
peer_id = "{beta}"
prefix = "10.0.0.0/7"
relay_capable = "yes"
[policy]
allow_relay = 1
strict = false
"#,
        beta = beta.peer_id(),
    );
    write("config_parse", "many-errors.toml", &broken)?;

    // Fields mode (leading NUL, see fuzz_targets/config_parse.rs): every
    // default spelled out, and the empty input that keeps all defaults.
    let defaults = vine_fuzz::fields_defaults();
    let doc = vine_fuzz::fields_document(&defaults);
    assert!(
        !config::parse(&doc).has_errors(),
        "fields defaults must be valid:\n{doc}"
    );
    assert_eq!(doc, vine_fuzz::fields_document(""));
    write("config_parse", "fields-defaults", &format!("\0{defaults}"))?;
    write("config_parse", "fields-empty", "\0")?;

    // identity_parse --------------------------------------------------------
    let id_text = me.to_file_text();
    assert!(Identity::from_file_text(&id_text).is_ok());
    write("identity_parse", "valid-identity", &id_text)?;
    write(
        "identity_parse",
        "tampered-identity",
        &id_text.replace(&me.peer_id().to_string(), &beta.peer_id().to_string()),
    )?;
    write(
        "identity_parse",
        "scalars",
        &format!(
            "peer_id = {}\nfingerprint = {}\nprefix = 10.42.1.0/24\nprefix = 0.0.0.0/0\nprefix = 10.42.1.7/32\n",
            beta.peer_id(),
            beta.fingerprint(),
        ),
    )?;
    // Programs and binary structures (node_session, dataplane_batch,
    // wg_decrypt, netlink_reply, udp_cmsg, control_json): built by
    // vine_fuzz::seeds, each replayed through its target's body here so a
    // seed that trips a check is never written.
    for (target, name, bytes) in vine_fuzz::seeds::all() {
        let (_, body) = vine_fuzz::TARGETS
            .iter()
            .find(|(t, _)| *t == target)
            .expect("seeds are for known targets");
        body(&bytes);
        let dir = root.join(target);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join(name), &bytes)?;
    }
    println!("seeds written to {}", root.display());
    Ok(())
}
