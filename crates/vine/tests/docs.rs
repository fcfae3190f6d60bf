//! Keeps `docs/config-reference.md` true to the config: every key the
//! template of `vine config init` writes (commented-out ones included) has
//! a row in the reference, every key the reference lists is one that
//! `vine config validate` accepts, and the default the reference gives for
//! a key whose template value is fixed is that value.
//!
//! The reference lists keys in tables under headings that name the section
//! (``## `[node]` ``, ``## `[[allowed_peers]]` ``), one row per key:
//! `` | `key` | type | default | meaning | ``.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Section name (`node`, `allowed_peers`, …) → key → value text.
type Keys = BTreeMap<String, BTreeMap<String, String>>;

fn reference_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/config-reference.md")
}

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

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// `[name]` or `[[name]]` (after an optional `# `) → `name`.
fn section_header(line: &str) -> Option<&str> {
    let line = line.strip_prefix('#').unwrap_or(line).trim();
    let inner = line
        .strip_prefix("[[")
        .and_then(|l| l.strip_suffix("]]"))
        .or_else(|| line.strip_prefix('[').and_then(|l| l.strip_suffix(']')))?;
    let is_name = !inner.is_empty() && inner.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    is_name.then_some(inner)
}

/// `key = value` (after an optional `# `, trailing `# comment` removed) →
/// (`key`, `value`).
fn key_line(line: &str) -> Option<(&str, &str)> {
    let line = line.strip_prefix('#').unwrap_or(line).trim();
    let (key, value) = line.split_once(" = ")?;
    let is_key = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let value = match value.find(" #") {
        Some(i) => &value[..i],
        None => value,
    };
    is_key.then_some((key, value.trim()))
}

/// The keys of a rendered template, commented-out examples included.
fn template_keys(text: &str) -> Keys {
    let mut keys = Keys::new();
    let mut section = None::<String>;
    for line in text.lines() {
        if let Some(name) = section_header(line) {
            section = Some(name.to_owned());
            keys.entry(name.to_owned()).or_default();
        } else if let (Some(s), Some((key, value))) = (&section, key_line(line)) {
            keys.entry(s.clone())
                .or_default()
                .insert(key.to_owned(), value.to_owned());
        }
    }
    keys
}

/// The keys of the reference, with their "default" cell.
fn reference_keys(text: &str) -> Keys {
    let mut keys = Keys::new();
    let mut section = None::<String>;
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            section = heading
                .trim()
                .strip_prefix('`')
                .and_then(|h| h.strip_suffix('`'))
                .and_then(section_header)
                .map(str::to_owned);
            if let Some(s) = &section {
                keys.entry(s.clone()).or_default();
            }
            continue;
        }
        let Some(s) = &section else { continue };
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "", key, type, default, meaning, ""
        if cells.len() < 6 || !cells[0].is_empty() {
            continue;
        }
        let Some(key) = cells[1].strip_prefix('`').and_then(|k| k.strip_suffix('`')) else {
            continue;
        };
        let previous = keys
            .entry(s.clone())
            .or_default()
            .insert(key.to_owned(), cells[3].to_owned());
        assert!(
            previous.is_none(),
            "docs/config-reference.md lists [{s}] {key} twice"
        );
    }
    keys
}

/// Writes the template through `vine config init` to `dir/file`, naming
/// the identity file `dir/file.identity`, with `extra` flags.
fn render(dir: &Path, file: &str, extra: &[&str]) -> String {
    let config = dir.join(file);
    let identity = dir.join(format!("{file}.identity"));
    let mut args = vec![
        "config",
        "init",
        "-c",
        path_str(&config),
        "--identity",
        path_str(&identity),
    ];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = vine(&args);
    assert_eq!(code, 0, "vine config init failed:\n{stdout}{stderr}");
    fs::read_to_string(&config).expect("read the written template")
}

/// Single tables (`[node]`) hold keys directly; array tables
/// (`[[allowed_peers]]`) are lists of entries.
fn is_array_section(template: &str, section: &str) -> bool {
    template.lines().any(|l| {
        l.strip_prefix('#')
            .unwrap_or(l)
            .trim()
            .starts_with(&format!("[[{section}]]"))
    })
}

#[test]
fn config_reference_matches_the_template() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let plain = render(dir, "a.toml", &[]);
    let varied = render(
        dir,
        "b.toml",
        &[
            "--name",
            "zeta",
            "--network-id",
            "other-net",
            "--address",
            "10.77.3.1/16",
            "--listen-port",
            "5100",
            "--tun-name",
            "vt9",
            "--runtime-dir",
            "/run/vine-docs-test",
        ],
    );
    let template = template_keys(&plain);
    let other = template_keys(&varied);
    let reference_text =
        fs::read_to_string(reference_path()).expect("read docs/config-reference.md");
    let reference = reference_keys(&reference_text);

    assert!(
        template.values().map(BTreeMap::len).sum::<usize>() >= 15,
        "found too few keys in the template; did its format change?\n{plain}"
    );

    // Every template key is documented.
    let mut missing = Vec::new();
    for (section, keys) in &template {
        for key in keys.keys() {
            if !reference.get(section).is_some_and(|r| r.contains_key(key)) {
                missing.push(format!("[{section}] {key}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/config-reference.md has no row for these keys of the config template: {}",
        missing.join(", ")
    );

    // A fixed value in the template (the same whatever `config init` is
    // told) is a default, and the reference must give it.
    for (section, keys) in &template {
        if is_array_section(&plain, section) {
            continue; // the entries there are examples, not defaults
        }
        for (key, value) in keys {
            if other.get(section).and_then(|k| k.get(key)) != Some(value) {
                continue; // set from `config init`'s arguments
            }
            let default = &reference[section][key];
            assert!(
                default.contains(value.as_str()),
                "docs/config-reference.md gives [{section}] {key} the default {default}, \
                 but the template writes {key} = {value}"
            );
        }
    }

    // Every documented key is accepted by the validator (no unknown key or
    // section): keys of single tables go right under their header in the
    // template, keys of array tables into a new entry.
    let mut config = plain.clone();
    for (section, keys) in &reference {
        for key in keys.keys() {
            if template.get(section).is_some_and(|t| t.contains_key(key)) {
                continue; // present in the template, checked above
            }
            if is_array_section(&plain, section) {
                config.push_str(&format!("\n[[{section}]]\n{key} = \"x\"\n"));
            } else {
                let header = format!("\n[{section}]\n");
                let at = config
                    .find(&header)
                    .unwrap_or_else(|| panic!("the template has no [{section}] section"));
                config.insert_str(at + header.len(), &format!("{key} = \"x\"\n"));
            }
        }
    }
    let probe = dir.join("probe.toml");
    fs::write(&probe, &config).expect("write probe config");
    let (_, stdout, stderr) = vine(&[
        "config",
        "validate",
        "-c",
        path_str(&probe),
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("vine config validate printed no JSON ({e}):\n{stdout}{stderr}")
    });
    let unknown: Vec<String> = report["diagnostics"]
        .as_array()
        .expect("diagnostics array")
        .iter()
        .filter(|d| {
            matches!(
                d["code"].as_str(),
                Some("unknown-key" | "unknown-section" | "syntax")
            )
        })
        .map(|d| d["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/config-reference.md documents keys the config does not accept: {}\n{config}",
        unknown.join("; ")
    );
}
