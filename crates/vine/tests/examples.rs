//! `examples/multi-pc/`: the four showcase configs are rejected while they
//! hold placeholders, and validate cleanly — no errors, no warnings — once
//! real PeerIds (from freshly generated identities) are filled in; the four
//! agree with each other on who owns which prefix, who may relay and who
//! acts as the relay.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const NODES: [&str; 4] = ["alpha", "beta", "gamma", "relay"];

fn vine(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vine"))
        .args(args)
        .env_remove("VINE_CONFIG")
        .output()
        .expect("run vine");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(args: &[&str]) -> Value {
    let (code, out, err) = vine(args);
    assert_eq!(code, 0, "vine {args:?}: {out}{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/multi-pc")
        .join(format!("{name}.toml"));
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn multi_pc_examples_validate_once_peer_ids_are_filled_in() {
    let t = tempfile::tempdir().expect("tempdir");
    // One identity per machine, as `vine identity init` makes it.
    let mut ids = Vec::new();
    for name in NODES {
        let identity = t.path().join(name).join("identity");
        let v = json(&[
            "identity",
            "init",
            "--identity",
            s(&identity),
            "--format",
            "json",
        ]);
        ids.push((
            name,
            identity,
            v["peer_id"].as_str().expect("id").to_owned(),
        ));
    }
    let fill = |text: &str, identity: &Path| {
        let mut text = text.replace("/var/lib/libvine/identity", s(identity));
        for (name, _, id) in &ids {
            text = text.replace(&format!("PEER_ID_OF_{}", name.to_uppercase()), id);
        }
        text
    };

    let mut shown: Vec<(&str, String, Value)> = Vec::new();
    for (name, identity, id) in &ids {
        let raw = example(name);
        let dir = t.path().join(name);
        // As shipped: every placeholder is an invalid-peer-id error.
        let unfilled: PathBuf = dir.join("unfilled.toml");
        fs::write(
            &unfilled,
            raw.replace("/var/lib/libvine/identity", s(identity)),
        )
        .expect("write");
        let (code, out, _) = vine(&["config", "validate", "-c", s(&unfilled), "--format", "json"]);
        assert_eq!(code, 1, "{name}: placeholders accepted: {out}");
        let report: Value = serde_json::from_str(&out).expect("json");
        let codes: Vec<&str> = report["diagnostics"]
            .as_array()
            .expect("diagnostics")
            .iter()
            .filter_map(|d| d["code"].as_str())
            .collect();
        assert!(!codes.is_empty(), "{name}: {out}");
        assert!(
            codes.iter().all(|c| *c == "invalid-peer-id"),
            "{name}: only placeholders may be wrong: {out}"
        );

        // Filled in: valid, and without a single warning.
        let config = dir.join("vine.toml");
        fs::write(&config, fill(&raw, identity)).expect("write");
        let report = json(&["config", "validate", "-c", s(&config), "--format", "json"]);
        assert_eq!(report["valid"], true, "{name}: {report}");
        assert_eq!(report["errors"], 0, "{name}: {report}");
        assert_eq!(report["warnings"], 0, "{name}: {report}");
        let v = json(&["config", "show", "-c", s(&config), "--format", "json"]);
        assert_eq!(v["node"]["name"], *name);
        assert_eq!(v["node"]["network_id"], "home-net");
        shown.push((name, id.clone(), v));
    }

    // The four agree: each lists the other three with the prefix that node
    // owns, only the relay is relay-capable, only the relay has opted in to
    // relaying (act_as_relay), and the members bootstrap from the relay.
    let relay_id = &ids[3].2;
    for (name, _, v) in &shown {
        assert_eq!(v["node"]["act_as_relay"], *name == "relay", "{name}");
        let allowed = v["allowed_peers"].as_array().expect("allowed_peers");
        assert_eq!(allowed.len(), 3, "{name}");
        for (other, other_id, ov) in &shown {
            if other == name {
                continue;
            }
            let entry = allowed
                .iter()
                .find(|p| p["peer_id"] == other_id.as_str())
                .unwrap_or_else(|| panic!("{name} does not list {other}"));
            let prefix = format!(
                "{}.0/{}",
                ov["tun"]["address"]
                    .as_str()
                    .expect("address")
                    .rsplit_once('.')
                    .expect("dotted")
                    .0,
                ov["tun"]["prefix_len"]
            );
            assert_eq!(entry["prefix"], prefix.as_str(), "{name} lists {other}");
            assert_eq!(entry["relay_capable"], *other == "relay", "{name}: {other}");
            assert_eq!(entry["name"], *other);
        }
        let boot = v["bootstrap_peers"].as_array().expect("bootstrap_peers");
        if *name == "relay" {
            assert!(boot.is_empty());
        } else {
            assert_eq!(boot.len(), 1, "{name}");
            assert_eq!(boot[0]["peer_id"], relay_id.as_str());
        }
    }
}
