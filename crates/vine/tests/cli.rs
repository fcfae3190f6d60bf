//! Runs the built `vine` binary on good and bad inputs and checks exit
//! codes, files and messages. Every test works in its own temp directory.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

fn vine(args: &[&str]) -> Run {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_vine"))
        .args(args)
        // Never fall back to the real /etc/libvine config of the host.
        .env_remove("VINE_CONFIG")
        .output()
        .expect("run vine");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(args: &[&str]) -> Run {
    let r = vine(args);
    assert_eq!(r.code, 0, "vine {args:?} failed:\n{}", r.all());
    r
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

/// A node directory with an identity and a config made through the CLI.
struct Node {
    dir: PathBuf,
    identity: PathBuf,
    config: PathBuf,
}

fn node(root: &Path, name: &str, address: &str) -> Node {
    let dir = root.join(name);
    let identity = dir.join("state/identity");
    let config = dir.join("vine.toml");
    ok(&["identity", "init", "--identity", s(&identity)]);
    ok(&[
        "config",
        "init",
        "-c",
        s(&config),
        "--identity",
        s(&identity),
        "--name",
        name,
        "--address",
        address,
    ]);
    Node {
        dir,
        identity,
        config,
    }
}

#[test]
fn version_names_crate_version_and_commit() {
    let r = ok(&["version"]);
    assert!(
        r.stdout
            .starts_with(&format!("vine {} (commit ", env!("CARGO_PKG_VERSION")))
    );
    let r = ok(&["version", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["commit"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(ok(&["--version"]).stdout.contains("commit"));
}

#[test]
fn help_lists_the_whole_command_tree() {
    let r = ok(&["help"]);
    for cmd in [
        "identity",
        "config",
        "daemon",
        "up",
        "down",
        "status",
        "peers",
        "routes",
        "sessions",
        "counters",
        "snapshot",
        "ping",
        "doctor",
        "demo",
        "completions",
        "version",
    ] {
        assert!(r.stdout.contains(cmd), "help lacks {cmd}");
    }
    assert!(ok(&["identity", "--help"]).stdout.contains("export-public"));
    assert!(ok(&["daemon", "--help"]).stdout.contains("start"));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(vine(&["bogus"]).code, 2);
    assert_eq!(vine(&[]).code, 2);
    assert_eq!(vine(&["status", "--format", "xml"]).code, 2);
    assert_eq!(vine(&["ping", "not-an-ip"]).code, 2);
    assert_eq!(vine(&["identity", "init", "--frce"]).code, 2);
}

#[test]
fn diagnostics_without_a_daemon_say_so_and_fake_nothing() {
    let t = tempfile::tempdir().expect("tempdir");
    let run = t.path().join("run");
    let identity = t.path().join("state/identity");
    let config = t.path().join("vine.toml");
    ok(&["identity", "init", "--identity", s(&identity)]);
    ok(&[
        "config",
        "init",
        "-c",
        s(&config),
        "--identity",
        s(&identity),
        "--name",
        "alpha",
        "--address",
        "10.42.0.1/24",
        "--runtime-dir",
        s(&run),
    ]);
    let c = s(&config);
    // The configured view, with a clear note.
    for cmd in ["status", "peers", "routes", "sessions"] {
        let r = ok(&[cmd, "-c", c]);
        assert!(
            r.stderr.contains("vine is not running"),
            "{cmd}: {}",
            r.stderr
        );
        assert!(r.stderr.contains("showing the configured view"), "{cmd}");
    }
    assert!(ok(&["routes", "-c", c]).stdout.contains("10.42.0.0/24"));
    let r = ok(&["peers", "-c", c, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["running"], false);
    // No faked numbers: counters, snapshot and ping fail.
    for args in [&["counters"][..], &["snapshot"], &["ping", "10.42.1.1"]] {
        let mut a = args.to_vec();
        a.extend(["-c", c]);
        let r = vine(&a);
        assert_eq!(r.code, 1, "vine {a:?}: {}", r.all());
        assert!(r.stderr.contains("vine is not running"), "{}", r.stderr);
        assert!(r.stdout.is_empty(), "no fake output: {}", r.stdout);
    }
    assert!(
        vine(&["ping", "10.42.1.1", "-c", c])
            .stderr
            .contains("no allowed peer owns 10.42.1.1")
    );
    // Lifecycle without a daemon.
    let r = vine(&["daemon", "stop", "-c", c]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("not running"), "{}", r.stderr);
    assert_eq!(vine(&["down", "-c", c]).code, 1);
    assert!(
        ok(&["daemon", "status", "-c", c])
            .stdout
            .contains("stopped")
    );
}

/// Checks a `vine doctor --format json` run: exit code 0 or 1 matching
/// `ok`, every check named, every failing check with a fix. Returns the
/// checks.
fn doctor_json(args: &[&str]) -> Vec<serde_json::Value> {
    let r = vine(args);
    assert!(r.code == 0 || r.code == 1, "vine {args:?}: {}", r.all());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("doctor prints JSON");
    let ok = v["ok"].as_bool().expect("`ok` is a bool");
    assert_eq!(ok, r.code == 0, "exit code matches `ok`: {}", r.stdout);
    let checks = v["checks"]
        .as_array()
        .expect("`checks` is an array")
        .clone();
    assert!(!checks.is_empty());
    for c in &checks {
        assert!(c["name"].as_str().is_some_and(|n| !n.is_empty()), "{c}");
        assert!(c["detail"].as_str().is_some_and(|d| !d.is_empty()), "{c}");
        let passed = c["ok"].as_bool().expect("check `ok` is a bool");
        if !passed {
            assert!(
                c["fix"].as_str().is_some_and(|f| !f.is_empty()),
                "failing check without a fix: {c}"
            );
        }
    }
    assert_eq!(ok, checks.iter().all(|c| c["ok"] == true));
    checks
}

#[test]
fn doctor_reports_every_check_with_fixes() {
    let t = tempfile::tempdir().expect("tempdir");
    let n = node(t.path(), "a", "10.42.0.1/24");
    let checks = doctor_json(&["doctor", "-c", s(&n.config), "--format", "json"]);
    let names: Vec<&str> = checks.iter().filter_map(|c| c["name"].as_str()).collect();
    for name in [
        "tun-device",
        "cap-net-admin",
        "config",
        "identity",
        "tun-name",
        "route-conflicts",
        "udp-port",
    ] {
        assert!(names.contains(&name), "no {name} check in {names:?}");
    }
    let by_name = |name: &str| {
        checks
            .iter()
            .find(|c| c["name"] == name)
            .expect("check present")
            .clone()
    };
    assert_eq!(by_name("config")["ok"], true, "{checks:?}");
    assert_eq!(by_name("identity")["ok"], true, "{checks:?}");

    // Text: one line per check, ok or FAIL first, same exit code.
    let json_code = vine(&["doctor", "-c", s(&n.config), "--format", "json"]).code;
    let r = vine(&["doctor", "-c", s(&n.config)]);
    assert_eq!(r.code, json_code, "{}", r.all());
    for name in names {
        let line = r
            .stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{}", r.stdout));
        assert!(
            line.starts_with("ok ") || line.starts_with("FAIL "),
            "{line}"
        );
        if line.starts_with("FAIL") {
            assert!(line.contains("fix: "), "{line}");
        }
    }

    // Without a readable config the host checks still run, and doctor fails.
    let missing = t.path().join("missing.toml");
    let checks = doctor_json(&["doctor", "-c", s(&missing), "--format", "json"]);
    let config = checks
        .iter()
        .find(|c| c["name"] == "config")
        .expect("config check");
    assert_eq!(config["ok"], false);
    assert!(checks.iter().any(|c| c["name"] == "tun-device"));
    assert_eq!(vine(&["doctor", "-c", s(&missing)]).code, 1);
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let r = ok(&["completions", shell]);
        assert!(r.stdout.contains("export-public"), "{shell}");
    }
    assert_eq!(vine(&["completions", "tcsh"]).code, 2);
}

#[test]
fn identity_init_writes_a_private_file_and_refuses_to_overwrite() {
    let t = tempfile::tempdir().expect("tempdir");
    let id = t.path().join("var/lib/libvine/identity");
    let r = ok(&["identity", "init", "--identity", s(&id)]);
    assert!(r.stdout.contains("peer_id"));
    assert_eq!(mode(&id), 0o600);
    assert_eq!(mode(id.parent().expect("parent")), 0o700);
    let text = fs::read_to_string(&id).expect("read");
    for field in [
        "format = vine-identity-v1",
        "seed = ",
        "public_key = ",
        "peer_id = vn1",
        "fingerprint = ",
    ] {
        assert!(text.contains(field), "missing {field}");
    }

    let again = vine(&["identity", "init", "--identity", s(&id)]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("already exists") && again.stderr.contains("--force"));
    assert_eq!(
        fs::read_to_string(&id).expect("read"),
        text,
        "not overwritten"
    );

    let first = ok(&["identity", "fingerprint", "--identity", s(&id)]).stdout;
    ok(&["identity", "init", "--force", "--identity", s(&id)]);
    let second = ok(&["identity", "fingerprint", "--identity", s(&id)]).stdout;
    assert_ne!(first, second, "--force makes a new identity");
}

#[test]
fn identity_show_hides_the_seed_unless_asked() {
    let t = tempfile::tempdir().expect("tempdir");
    let id = t.path().join("identity");
    ok(&["identity", "init", "--identity", s(&id)]);
    let text = fs::read_to_string(&id).expect("read");
    let seed = text
        .lines()
        .find_map(|l| l.strip_prefix("seed = "))
        .expect("seed line");
    let shown = ok(&["identity", "show", "--identity", s(&id)]);
    assert!(!shown.stdout.contains(seed));
    assert!(shown.stdout.contains("--show-secret"));
    let json = ok(&["identity", "show", "--identity", s(&id), "--format", "json"]);
    assert!(!json.stdout.contains(seed));
    let secret = ok(&["identity", "show", "--show-secret", "--identity", s(&id)]);
    assert!(secret.stdout.contains(seed));
}

#[test]
fn identity_errors_say_what_to_do() {
    let t = tempfile::tempdir().expect("tempdir");
    let id = t.path().join("identity");

    let missing = vine(&["identity", "show", "--identity", s(&id)]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("vine identity init"),
        "{}",
        missing.stderr
    );

    let relative = vine(&["identity", "init", "--identity", "relative/identity"]);
    assert_eq!(relative.code, 1);
    assert!(relative.stderr.contains("not absolute"));

    ok(&["identity", "init", "--identity", s(&id)]);
    fs::set_permissions(&id, fs::Permissions::from_mode(0o644)).expect("chmod");
    let loose = vine(&["identity", "show", "--identity", s(&id)]);
    assert_eq!(loose.code, 1);
    assert!(
        loose
            .stderr
            .contains(&format!("chmod 600 {}", id.display())),
        "{}",
        loose.stderr
    );
    fs::set_permissions(&id, fs::Permissions::from_mode(0o600)).expect("chmod");

    let text = fs::read_to_string(&id).expect("read");
    let fp_line = text
        .lines()
        .find(|l| l.starts_with("fingerprint"))
        .expect("fp");
    fs::write(
        &id,
        text.replace(fp_line, "fingerprint = 0000-0000-0000-0000-0000"),
    )
    .expect("tamper");
    let tampered = vine(&["identity", "export-public", "--identity", s(&id)]);
    assert_eq!(tampered.code, 1);
    assert!(
        tampered.stderr.contains("does not match"),
        "{}",
        tampered.stderr
    );

    fs::write(&id, &text[..text.len() - 30]).expect("truncate");
    let truncated = vine(&["identity", "fingerprint", "--identity", s(&id)]);
    assert_eq!(truncated.code, 1);
    assert!(
        truncated.stderr.contains("truncated"),
        "{}",
        truncated.stderr
    );

    fs::write(&id, text.replace("vine-identity-v1", "vine-identity-v9")).expect("format");
    let unknown = vine(&["identity", "show", "--identity", s(&id)]);
    assert_eq!(unknown.code, 1);
    assert!(
        unknown.stderr.contains("vine-identity-v9"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn two_node_overlay_from_export_public_validates() {
    let t = tempfile::tempdir().expect("tempdir");
    let alpha = node(t.path(), "alpha", "10.42.0.1/24");
    let beta = node(t.path(), "beta", "10.42.1.1/24");

    // Each node's export is pasted verbatim into the other's config.
    let alpha_export = ok(&["identity", "export-public", "-c", s(&alpha.config)]).stdout;
    let beta_export = ok(&["identity", "export-public", "-c", s(&beta.config)]).stdout;
    assert!(beta_export.contains("prefix = \"10.42.1.0/24\""));
    assert!(beta_export.contains("name = \"beta\""));
    let append = |n: &Node, text: &str| {
        let mut config = fs::read_to_string(&n.config).expect("read");
        config.push('\n');
        config.push_str(text);
        fs::write(&n.config, config).expect("write");
    };
    append(&alpha, &beta_export);
    append(&beta, &alpha_export);

    for n in [&alpha, &beta] {
        let r = ok(&["config", "validate", "-c", s(&n.config)]);
        assert!(r.stdout.contains(": valid"), "{}", r.stdout);
        assert!(r.stdout.contains("1 allowed peer"), "{}", r.stdout);
        assert!(!r.stdout.contains("error"), "{}", r.stdout);
    }

    let json = ok(&["config", "show", "-c", s(&alpha.config), "--format", "json"]).stdout;
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["allowed_peers"][0]["prefix"], "10.42.1.0/24");
    assert_eq!(v["allowed_peers"][0]["name"], "beta");
    assert_eq!(v["node"]["listen_port"], 4100);
    assert_eq!(v["tun"]["mtu"], 1400);
    assert_eq!(v["policy"]["strict_allowlist"], true);
    let text = ok(&["config", "show", "-c", s(&alpha.config)]).stdout;
    assert!(text.contains("runtime_dir = \"/run/libvine\""), "{text}");

    // The public export in JSON agrees with the fingerprint command.
    let export: serde_json::Value = serde_json::from_str(
        &ok(&[
            "identity",
            "export-public",
            "-c",
            s(&beta.config),
            "--format",
            "json",
        ])
        .stdout,
    )
    .expect("json");
    let fp = ok(&["identity", "fingerprint", "--identity", s(&beta.identity)]).stdout;
    assert_eq!(export["fingerprint"], fp.trim());
    assert_eq!(export["prefix"], "10.42.1.0/24");
    assert!(export.get("seed").is_none());
    let _ = &alpha.dir;
}

#[test]
fn export_without_a_config_marks_the_prefix_to_fill_in() {
    let t = tempfile::tempdir().expect("tempdir");
    let id = t.path().join("identity");
    let missing_config = t.path().join("none.toml");
    ok(&["identity", "init", "--identity", s(&id)]);
    let r = ok(&[
        "identity",
        "export-public",
        "--identity",
        s(&id),
        "-c",
        s(&missing_config),
    ]);
    assert!(r.stdout.contains("prefix = \"SET-ME\""));
    assert!(r.stdout.contains("[[allowed_peers]]"));
}

#[test]
fn validate_says_whether_the_node_relays_and_catches_caps_on_a_non_relay() {
    let t = tempfile::tempdir().expect("tempdir");
    let n = node(t.path(), "alpha", "10.42.0.1/24");
    let text = fs::read_to_string(&n.config).expect("read");
    assert!(text.contains("\nact_as_relay = false\n"), "{text}");

    // A fresh config relays nothing, and says so.
    let r = ok(&["config", "validate", "-c", s(&n.config)]);
    assert!(
        r.stdout
            .contains("relays nothing for others (act_as_relay = false)"),
        "{}",
        r.stdout
    );

    // A relay cap on a node that does not relay: a warning with the fix,
    // on the line of the cap.
    let capped = text.replace("relay_rate_limit_kbps = 0", "relay_rate_limit_kbps = 20000");
    fs::write(&n.config, &capped).expect("write");
    let line = capped
        .lines()
        .position(|l| l.starts_with("relay_rate_limit_kbps"))
        .expect("cap line")
        + 1;
    let r = ok(&["config", "validate", "-c", s(&n.config)]);
    assert!(
        r.stdout.contains(&format!(
            ":{line}:25: warning[relay-limit-without-relaying]"
        )),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("set `act_as_relay = true` in [node]"),
        "{}",
        r.stdout
    );

    // Opted in: no warning, and the summary says it relays.
    fs::write(
        &n.config,
        capped.replace("act_as_relay = false", "act_as_relay = true"),
    )
    .expect("write");
    let r = ok(&["config", "validate", "-c", s(&n.config)]);
    assert!(
        !r.stdout.contains("relay-limit-without-relaying"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("relays for others (act_as_relay = true)"),
        "{}",
        r.stdout
    );
    let v: serde_json::Value = serde_json::from_str(
        &ok(&["config", "show", "-c", s(&n.config), "--format", "json"]).stdout,
    )
    .expect("json");
    assert_eq!(v["node"]["act_as_relay"], true);
    assert_eq!(v["policy"]["relay_source_rate_limit_kbps"], 50000);

    // A wrong value is an error that says how to write it.
    fs::write(
        &n.config,
        text.replace("act_as_relay = false", "act_as_relay = \"yes\""),
    )
    .expect("write");
    let r = vine(&["config", "validate", "-c", s(&n.config)]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("`act_as_relay` in [node] must be a boolean, found a string"),
        "{}",
        r.stdout
    );
}

#[test]
fn validate_reports_every_problem_with_line_column_and_fix() {
    let t = tempfile::tempdir().expect("tempdir");
    let n = node(t.path(), "alpha", "10.42.0.1/24");
    let config = format!(
        r#"[node]
name = "alpha"
network_id = "Home Net"
identity_path = "{id}"

[tun]
name = "a-very-long-interface-name"
adress = "10.42.0.1"
address = "10.42.0.1"
prefix_len = 24
mtu = "1400"

[[bootstrap_peers]]
peer_id = "seed-a"
address = "198.51.100.10:4100"

[[allowed_peers]]
peer_id = "beta"
prefix = "10.42.1.5/24"

[policy]
allow_relay = true
"#,
        id = n.identity.display()
    );
    fs::write(&n.config, config).expect("write");
    let r = vine(&["config", "validate", "-c", s(&n.config)]);
    assert_eq!(r.code, 1, "{}", r.all());
    let path = n.config.display().to_string();
    for (line_col, needle) in [
        ("3:14", "invalid-network-id"),
        ("7:8", "invalid-tun-name"),
        ("8:1", "did you mean `address`?"),
        ("11:7", "remove the quotes: `mtu = 1400`"),
        ("14:11", "vine identity export-public"),
        ("15:11", "add the scheme: \"udp://198.51.100.10:4100\""),
        ("18:11", "vine identity export-public"),
        ("19:10", "did you mean \"10.42.1.0/24\"?"),
    ] {
        let prefix = format!("{path}:{line_col}: error");
        // A diagnostic is its first line plus the indented `help:` lines.
        let mut blocks: Vec<String> = Vec::new();
        for line in r.stdout.lines() {
            match blocks.last_mut() {
                Some(last) if line.starts_with(' ') => last.push_str(line),
                _ => blocks.push(line.to_owned()),
            }
        }
        let found = blocks
            .iter()
            .any(|b| b.starts_with(&prefix) && b.contains(needle));
        assert!(found, "expected {prefix} … {needle} in:\n{}", r.stdout);
    }
    assert!(r.stdout.contains("invalid: 8 errors"), "{}", r.stdout);

    let json = vine(&["config", "validate", "-c", s(&n.config), "--format", "json"]);
    assert_eq!(json.code, 1);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"], 8);
    let first = v["diagnostics"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["severity"] == "error"))
        .expect("an error");
    assert_eq!(first["line"], 3);
    assert_eq!(first["column"], 14);
    assert_eq!(first["code"], "invalid-network-id");
    assert!(
        first["hint"]
            .as_str()
            .is_some_and(|h| h.contains("home net")
                || h.contains("lowercase")
                || h.contains("letters"))
    );

    // `config show` refuses an invalid config and says why.
    let show = vine(&["config", "show", "-c", s(&n.config)]);
    assert_eq!(show.code, 1);
    assert!(show.stderr.contains("8 errors"), "{}", show.stderr);
}

#[test]
fn config_path_rules() {
    let t = tempfile::tempdir().expect("tempdir");
    let n = node(t.path(), "alpha", "10.42.0.1/24");

    fs::set_permissions(&n.config, fs::Permissions::from_mode(0o666)).expect("chmod");
    let r = vine(&["config", "validate", "-c", s(&n.config)]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("config-writable") && r.stdout.contains("chmod go-w"),
        "{}",
        r.stdout
    );
    fs::set_permissions(&n.config, fs::Permissions::from_mode(0o644)).expect("chmod");

    fs::set_permissions(&n.identity, fs::Permissions::from_mode(0o640)).expect("chmod");
    let r = vine(&["config", "validate", "-c", s(&n.config)]);
    assert_eq!(r.code, 1);
    let line = fs::read_to_string(&n.config)
        .expect("read")
        .lines()
        .position(|l| l.starts_with("identity_path"))
        .expect("identity_path line")
        + 1;
    assert!(
        r.stdout
            .contains(&format!(":{line}:17: error[identity-mode]")),
        "{}",
        r.stdout
    );
    fs::set_permissions(&n.identity, fs::Permissions::from_mode(0o600)).expect("chmod");

    let missing = vine(&["config", "validate", "-c", s(&t.path().join("nope.toml"))]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("vine config init"),
        "{}",
        missing.stderr
    );

    let relative = Command::new(env!("CARGO_BIN_EXE_vine"))
        .current_dir(&n.dir)
        .args(["config", "validate", "-c", "vine.toml"])
        .output()
        .expect("run");
    assert_eq!(relative.status.code(), Some(1));
    let out = String::from_utf8_lossy(&relative.stdout);
    assert!(
        out.contains("relative-path") && out.contains(s(&n.config)),
        "{out}"
    );
}

#[test]
fn config_init_refuses_overwrite_and_bad_values() {
    let t = tempfile::tempdir().expect("tempdir");
    let n = node(t.path(), "alpha", "10.42.0.1/24");
    let before = fs::read_to_string(&n.config).expect("read");
    // The template names the local PeerId when the identity exists.
    let peer = ok(&[
        "identity",
        "export-public",
        "-c",
        s(&n.config),
        "--format",
        "json",
    ])
    .stdout;
    let v: serde_json::Value = serde_json::from_str(&peer).expect("json");
    assert!(before.contains(v["peer_id"].as_str().expect("peer id")));

    let again = vine(&[
        "config",
        "init",
        "-c",
        s(&n.config),
        "--identity",
        s(&n.identity),
    ]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert_eq!(fs::read_to_string(&n.config).expect("read"), before);

    let other = t.path().join("other.toml");
    for bad in [
        &["--name", "not a name"][..],
        &["--network-id=-bad-"],
        &["--address", "10.42.0.0/24"],
        &["--address", "10.42.0.1"],
        &["--tun-name", "this-name-is-too-long"],
    ] {
        let mut args = vec![
            "config",
            "init",
            "-c",
            s(&other),
            "--identity",
            s(&n.identity),
        ];
        args.extend_from_slice(bad);
        let r = vine(&args);
        assert_eq!(r.code, 1, "{bad:?}: {}", r.all());
        assert!(
            r.stderr.contains("help:") || r.stderr.contains("write it like"),
            "{bad:?}: {}",
            r.stderr
        );
        assert!(!other.exists(), "{bad:?} wrote a file");
    }
    let relative = vine(&["config", "init", "-c", "vine.toml"]);
    assert_eq!(relative.code, 1);
}

#[test]
fn sessions_explain_without_a_daemon_says_so_and_exits_1() {
    let t = tempfile::tempdir().expect("tempdir");
    let run = t.path().join("run");
    let identity = t.path().join("state/identity");
    let config = t.path().join("vine.toml");
    ok(&["identity", "init", "--identity", s(&identity)]);
    ok(&[
        "config",
        "init",
        "-c",
        s(&config),
        "--identity",
        s(&identity),
        "--name",
        "alpha",
        "--address",
        "10.42.0.1/24",
        "--runtime-dir",
        s(&run),
    ]);
    let beta = node(t.path(), "beta", "10.42.1.1/24");
    let export = ok(&["identity", "export-public", "-c", s(&beta.config)]).stdout;
    let mut text = fs::read_to_string(&config).expect("read");
    text.push('\n');
    text.push_str(&export);
    fs::write(&config, text).expect("write");
    let c = s(&config);
    let beta_id = ok(&[
        "identity",
        "show",
        "-c",
        s(&beta.config),
        "--format",
        "json",
    ])
    .stdout;
    let beta_id: serde_json::Value = serde_json::from_str(&beta_id).expect("json");
    let beta_id = beta_id["peer_id"].as_str().expect("peer_id").to_owned();

    for (query, format) in [
        ("beta", "text"),
        (beta_id.as_str(), "text"),
        ("10.42.1.7", "json"),
    ] {
        let r = vine(&["sessions", "--explain", query, "-c", c, "--format", format]);
        assert_eq!(r.code, 1, "{query}: {}", r.all());
        assert!(r.stdout.is_empty(), "nothing faked: {}", r.stdout);
        assert!(
            r.stderr
                .contains("vine is not running (no control socket at")
                && r.stderr
                    .contains("path attempts are only known to a running daemon"),
            "{}",
            r.stderr
        );
        assert!(
            r.stderr.contains(&format!(
                "by the config, beta ({beta_id}) owns 10.42.1.0/24, relay_capable = false"
            )),
            "{query}: {}",
            r.stderr
        );
    }
    let r = vine(&["sessions", "--explain", "gamma", "-c", c]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("the config's [[allowed_peers]] has no peer matching \"gamma\""),
        "{}",
        r.stderr
    );
    let r = vine(&["sessions", "--explain", "10.42.0.9", "-c", c]);
    assert!(
        r.stderr
            .contains("10.42.0.9 is in this node's own prefix 10.42.0.0/24"),
        "{}",
        r.stderr
    );
    // `--explain` needs a value; plain `sessions` still shows the
    // configured view.
    assert_eq!(vine(&["sessions", "--explain", "-c", c]).code, 2);
    assert!(ok(&["sessions", "-c", c]).stdout.contains("beta"));
    assert!(ok(&["sessions", "--help"]).stdout.contains("--explain"));
}
