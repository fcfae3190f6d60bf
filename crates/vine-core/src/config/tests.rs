//! One test per validation rule of the config parser: each mutates a known
//! good baseline and checks the finding's code, severity, exact location and
//! hint, and whether the config survives.

use std::net::Ipv4Addr;

use super::validate::parse_udp_address;
use super::*;
use crate::identity::Identity;
use crate::peer_id::PeerId;

// ---------------------------------------------------------------------------
// Fixtures and helpers
// ---------------------------------------------------------------------------

/// The relay: bootstrap peer, allowlisted with `relay_capable = true`.
fn relay() -> PeerId {
    Identity::from_seed([1; 32]).peer_id()
}

/// A second, ordinary allowed peer.
fn beta() -> PeerId {
    Identity::from_seed([2; 32]).peer_id()
}

/// A peer that appears nowhere in the baseline.
fn stranger() -> PeerId {
    Identity::from_seed([3; 32]).peer_id()
}

/// A valid config without a single finding. Line numbers, which the tests
/// below rely on:
///
/// ```text
///  1 [node]
///  2 name = "alpha"
///  3 network_id = "home-net"
///  4 identity_path = "/var/lib/libvine/identity"
///  5
///  6 [tun]
///  7 address = "10.42.0.1"
///  8 prefix_len = 24
///  9
/// 10 [[bootstrap_peers]]
/// 11 peer_id = "<relay>"
/// 12 address = "udp://198.51.100.10:4100"
/// 13
/// 14 [[allowed_peers]]
/// 15 name = "relay"
/// 16 peer_id = "<relay>"
/// 17 prefix = "10.42.1.0/24"
/// 18 relay_capable = true
/// 19
/// 20 [[allowed_peers]]
/// 21 name = "beta"
/// 22 peer_id = "<beta>"
/// 23 prefix = "10.42.2.0/24"
/// ```
fn baseline() -> String {
    format!(
        r#"[node]
name = "alpha"
network_id = "home-net"
identity_path = "/var/lib/libvine/identity"

[tun]
address = "10.42.0.1"
prefix_len = 24

[[bootstrap_peers]]
peer_id = "{relay}"
address = "udp://198.51.100.10:4100"

[[allowed_peers]]
name = "relay"
peer_id = "{relay}"
prefix = "10.42.1.0/24"
relay_capable = true

[[allowed_peers]]
name = "beta"
peer_id = "{beta}"
prefix = "10.42.2.0/24"
"#,
        relay = relay(),
        beta = beta(),
    )
}

const NODE_BLOCK: &str = "[node]\nname = \"alpha\"\nnetwork_id = \"home-net\"\nidentity_path = \"/var/lib/libvine/identity\"\n\n";
const TUN_BLOCK: &str = "[tun]\naddress = \"10.42.0.1\"\nprefix_len = 24\n\n";

fn bootstrap_block() -> String {
    format!(
        "[[bootstrap_peers]]\npeer_id = \"{}\"\naddress = \"udp://198.51.100.10:4100\"\n\n",
        relay()
    )
}

fn allowed_blocks() -> String {
    format!(
        "[[allowed_peers]]\nname = \"relay\"\npeer_id = \"{}\"\nprefix = \"10.42.1.0/24\"\nrelay_capable = true\n\n[[allowed_peers]]\nname = \"beta\"\npeer_id = \"{}\"\nprefix = \"10.42.2.0/24\"\n",
        relay(),
        beta()
    )
}

/// The baseline with each `from` (which must occur exactly once) replaced.
fn edits(pairs: &[(&str, &str)]) -> String {
    let mut text = baseline();
    for (from, to) in pairs {
        assert_eq!(
            text.matches(from).count(),
            1,
            "`{from}` must occur exactly once in the text being edited"
        );
        text = text.replacen(from, to, 1);
    }
    text
}

/// The baseline with `from` (which must occur exactly once) replaced by `to`.
fn edit(from: &str, to: &str) -> String {
    edits(&[(from, to)])
}

/// The baseline followed by `extra`.
fn append(extra: &str) -> String {
    format!("{}{extra}", baseline())
}

fn at(line: usize, column: usize) -> Option<Location> {
    Some(Location { line, column })
}

/// Every finding, rendered, for assertion messages.
fn dump(p: &Parsed) -> String {
    p.diagnostics
        .iter()
        .map(|d| d.render("vine.toml"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn codes(p: &Parsed) -> Vec<&'static str> {
    p.diagnostics.iter().map(|d| d.code).collect()
}

fn hint(d: &Diagnostic) -> &str {
    d.hint.as_deref().expect("every finding carries a hint")
}

/// Parses `text`, asserts it yields exactly one finding with this code,
/// severity and location, that the finding has a hint, and that the config
/// is kept for a warning and withdrawn for an error. Returns the finding.
fn only(text: &str, code: &str, severity: Severity, location: Option<Location>) -> Diagnostic {
    let p = parse(text);
    assert_eq!(
        p.diagnostics.len(),
        1,
        "expected only `{code}`, got:\n{}",
        dump(&p)
    );
    let d = p.diagnostics[0].clone();
    assert_eq!(d.code, code, "{}", dump(&p));
    assert_eq!(d.severity, severity, "{}", dump(&p));
    assert_eq!(d.location, location, "{}", dump(&p));
    assert!(!hint(&d).trim().is_empty(), "empty hint: {}", dump(&p));
    assert_eq!(
        p.config.is_some(),
        severity == Severity::Warning,
        "config must survive warnings and only warnings: {}",
        dump(&p)
    );
    d
}

/// The single finding with `code` in `p`.
fn find<'p>(p: &'p Parsed, code: &str) -> &'p Diagnostic {
    let found: Vec<&Diagnostic> = p.diagnostics.iter().filter(|d| d.code == code).collect();
    assert_eq!(found.len(), 1, "expected one `{code}`, got:\n{}", dump(p));
    found[0]
}

fn assert_clean(text: &str) -> Config {
    let p = parse(text);
    assert!(
        p.diagnostics.is_empty(),
        "unexpected findings:\n{}",
        dump(&p)
    );
    p.config.expect("a config without findings is kept")
}

fn assert_contains(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "expected {needle:?} in {haystack:?}"
    );
}

use Severity::{Error, Warning};

// ---------------------------------------------------------------------------
// Baseline
// ---------------------------------------------------------------------------

#[test]
fn baseline_has_no_errors_and_no_warnings() {
    let p = parse(&baseline());
    assert!(p.diagnostics.is_empty(), "{}", dump(&p));
    assert!(!p.has_errors());
    assert_eq!(p.counts(), (0, 0));
    assert_eq!(
        p.identity_path.as_deref(),
        Some("/var/lib/libvine/identity")
    );
    let config = p.config.expect("baseline is valid");

    assert_eq!(config.node.name, "alpha");
    assert_eq!(config.node.network_id, "home-net");
    assert_eq!(config.node.identity_path, "/var/lib/libvine/identity");
    assert_eq!(config.tun.address, Ipv4Addr::new(10, 42, 0, 1));
    assert_eq!(config.tun.prefix_len, 24);
    assert_eq!(config.tun.local_prefix().to_string(), "10.42.0.0/24");

    assert_eq!(config.bootstrap_peers.len(), 1);
    assert_eq!(config.bootstrap_peers[0].peer_id, relay());
    assert_eq!(
        config.bootstrap_peers[0].address,
        UdpAddress {
            host: "198.51.100.10".into(),
            port: 4100
        }
    );

    assert_eq!(config.allowed_peers.len(), 2);
    let (r, b) = (&config.allowed_peers[0], &config.allowed_peers[1]);
    assert_eq!(r.peer_id, relay());
    assert_eq!(r.prefix.to_string(), "10.42.1.0/24");
    assert!(r.relay_capable);
    assert_eq!(r.name.as_deref(), Some("relay"));
    assert_eq!(r.fingerprint, None);
    assert_eq!(b.peer_id, beta());
    assert!(!b.relay_capable, "relay_capable defaults to false");
    assert_eq!(b.prefix.to_string(), "10.42.2.0/24");

    assert_eq!(config.policy, Policy::default());
}

#[test]
fn the_fixture_blocks_reassemble_the_baseline() {
    // The removal tests below cut these blocks out of the baseline.
    assert_eq!(
        format!(
            "{NODE_BLOCK}{TUN_BLOCK}{}{}",
            bootstrap_block(),
            allowed_blocks()
        ),
        baseline()
    );
}

#[test]
fn locate_finds_written_values_by_key_path() {
    let p = parse(&baseline());
    assert_eq!(p.locate("node.name"), at(2, 8));
    assert_eq!(p.locate("node.identity_path"), at(4, 17));
    assert_eq!(p.locate("tun.prefix_len"), at(8, 14));
    assert_eq!(p.locate("bootstrap_peers[0].address"), at(12, 11));
    assert_eq!(p.locate("allowed_peers[1].peer_id"), at(22, 11));
    assert_eq!(
        p.locate("tun.mtu"),
        None,
        "defaults are not written anywhere"
    );
    assert_eq!(p.locate("allowed_peers[2].peer_id"), None);
}

// ---------------------------------------------------------------------------
// Syntax and document structure
// ---------------------------------------------------------------------------

#[test]
fn syntax_error_is_located_and_suggests_quotes() {
    let d = only(
        &edit("name = \"alpha\"", "name = alpha"),
        "syntax",
        Error,
        at(2, 8),
    );
    assert_contains(&d.message, "TOML syntax");
    assert_contains(hint(&d), "double quotes");
}

#[test]
fn syntax_duplicate_key_points_at_the_second_one() {
    let d = only(
        &edit("prefix_len = 24\n", "prefix_len = 24\nprefix_len = 25\n"),
        "syntax",
        Error,
        at(9, 1),
    );
    assert_contains(&d.message, "duplicate key");
}

#[test]
fn syntax_error_suppresses_missing_section_guesses() {
    // A broken header may have swallowed the section; saying it is missing
    // would be a guess.
    let p = parse(&edit("[tun]\n", "[tun\n"));
    assert!(p.has_errors());
    assert!(p.config.is_none());
    assert_eq!(find(&p, "syntax").location.map(|l| l.line), Some(6));
    assert!(
        !codes(&p).contains(&"missing-section"),
        "no missing-section after a syntax error:\n{}",
        dump(&p)
    );
}

#[test]
fn syntax_error_suppresses_list_warnings() {
    // The broken header drops the relay's allowlist entry from the recovered
    // document; the relay and allowlist warnings would then be false.
    let p = parse(&edit(
        "[[allowed_peers]]\nname = \"relay\"",
        "[[allowed_peers]\nname = \"relay\"",
    ));
    assert_eq!(find(&p, "syntax").location, at(14, 17));
    assert!(
        p.diagnostics.iter().all(Diagnostic::is_error),
        "no warnings guessed from a half-read document:\n{}",
        dump(&p)
    );
    assert!(p.config.is_none());
}

#[test]
fn unknown_section_with_typo_suggests_the_section() {
    let p = parse(&edit("[node]", "[nodes]"));
    assert_eq!(
        codes(&p),
        ["missing-section", "unknown-section"],
        "{}",
        dump(&p)
    );
    let d = find(&p, "unknown-section");
    assert_eq!(d.severity, Error);
    assert_eq!(d.location, at(1, 2));
    assert_contains(&d.message, "`nodes`");
    assert_eq!(hint(d), "did you mean [node]?");
    assert!(p.config.is_none());
}

#[test]
fn unknown_section_without_suggestion_lists_the_sections() {
    let d = only(&append("\n[peers]\n"), "unknown-section", Error, at(25, 2));
    assert_contains(
        hint(&d),
        "[node], [tun], [[bootstrap_peers]], [[allowed_peers]] and [policy]",
    );
}

#[test]
fn top_level_key_names_the_section_it_belongs_in() {
    // Keys written before the first header land at the top level.
    let d = only(
        &format!("listen_port = 4100\n{}", baseline()),
        "unknown-section",
        Error,
        at(1, 1),
    );
    assert_eq!(hint(&d), "`listen_port` must be written inside [node]");
}

#[test]
fn missing_node_section() {
    let p = parse(&edit(NODE_BLOCK, ""));
    let d = only(&edit(NODE_BLOCK, ""), "missing-section", Error, None);
    assert_contains(&d.message, "[node]");
    assert_contains(hint(&d), "`vine config init`");
    assert_eq!(
        p.identity_path, None,
        "no [node], no identity path to check"
    );
}

#[test]
fn missing_tun_section() {
    let d = only(&edit(TUN_BLOCK, ""), "missing-section", Error, None);
    assert_contains(&d.message, "[tun]");
    assert_contains(hint(&d), "`address` and `prefix_len`");
}

#[test]
fn section_written_as_a_value_is_wrong_type() {
    let d = only(
        &format!("node = \"alpha\"\n{}", edit(NODE_BLOCK, "")),
        "wrong-type",
        Error,
        at(1, 8),
    );
    assert_eq!(d.message, "`node` must be a section, found a string");
    assert_contains(hint(&d), "section header `[node]`");
}

#[test]
fn policy_written_as_a_value_is_wrong_type() {
    let d = only(
        &format!("policy = true\n{}", baseline()),
        "wrong-type",
        Error,
        at(1, 10),
    );
    assert_eq!(d.message, "`policy` must be a section, found a boolean");
}

#[test]
fn single_bracket_allowed_peers_hints_double_brackets() {
    let one_entry = edit(
        &format!(
            "[[allowed_peers]]\nname = \"beta\"\npeer_id = \"{}\"\nprefix = \"10.42.2.0/24\"\n",
            beta()
        ),
        "",
    )
    .replacen("[[allowed_peers]]", "[allowed_peers]", 1);
    let d = only(&one_entry, "wrong-type", Error, at(14, 1));
    assert_contains(&d.message, "must be a list of entries, found a table");
    assert_contains(hint(&d), "`[[allowed_peers]]`");
    assert_contains(hint(&d), "not `[allowed_peers]`");
}

#[test]
fn list_entry_that_is_not_a_table_is_wrong_type() {
    let text = format!(
        "bootstrap_peers = [\"udp://198.51.100.10:4100\"]\n{}",
        edit(&bootstrap_block(), "")
    );
    let d = only(&text, "wrong-type", Error, at(1, 20));
    assert_eq!(
        d.message,
        "entry #1 of `bootstrap_peers` must be a table, found a string"
    );
    assert_contains(hint(&d), "`[[bootstrap_peers]]`");
}

#[test]
fn list_written_as_a_string_is_wrong_type() {
    let text = format!(
        "bootstrap_peers = \"udp://198.51.100.10:4100\"\n{}",
        edit(&bootstrap_block(), "")
    );
    let d = only(&text, "wrong-type", Error, at(1, 19));
    assert_contains(&d.message, "must be a list of entries, found a string");
}

#[test]
fn inline_tables_and_dotted_keys_are_valid_toml_for_sections() {
    let text = format!(
        "tun = {{ address = \"10.42.0.1\", prefix_len = 24, mtu = 1380 }}\nnode.name = \"alpha\"\nnode.network_id = \"home-net\"\n{}{}",
        bootstrap_block(),
        allowed_blocks()
    );
    let config = assert_clean(&text);
    assert_eq!(config.tun.mtu, 1380);
    assert_eq!(config.node.name, "alpha");
    assert_eq!(parse(&text).locate("tun.mtu"), at(1, 55));
}

#[test]
fn file_too_large() {
    let big = format!(
        "{}{}",
        baseline(),
        "# padding\n".repeat(2 * 1024 * 1024 / 10)
    );
    assert!(big.len() > 2 * 1024 * 1024 - 16);
    let p = parse(&big);
    let d = only(&big, "file-too-large", Error, None);
    assert_contains(&d.message, &big.len().to_string());
    assert_contains(&d.message, "1048576");
    assert_contains(hint(&d), "right file");
    assert_eq!(p.identity_path, None, "the text is not read at all");
}

#[test]
fn file_of_exactly_the_limit_is_read() {
    let base = baseline();
    let pad = MAX_CONFIG_BYTES - base.len() - 1;
    let text = format!("{base}#{}", "x".repeat(pad));
    assert_eq!(text.len(), MAX_CONFIG_BYTES);
    assert_clean(&text);
}

// ---------------------------------------------------------------------------
// Keys: unknown, missing, wrong type, out of range
// ---------------------------------------------------------------------------

#[test]
fn unknown_key_with_typo_suggests_the_right_key() {
    let p = parse(&edit("address = \"10.42.0.1\"", "adress = \"10.42.0.1\""));
    assert_eq!(codes(&p), ["missing-key", "unknown-key"], "{}", dump(&p));
    let d = find(&p, "unknown-key");
    assert_eq!(d.severity, Error);
    assert_eq!(d.location, at(7, 1));
    assert_eq!(d.message, "unknown key `adress` in [tun]");
    assert_contains(hint(d), "did you mean `address`");
    assert_eq!(find(&p, "missing-key").location, at(6, 1));
    assert!(p.config.is_none());
}

#[test]
fn unknown_key_from_another_section_names_its_home() {
    let d = only(
        &edit(
            "identity_path = \"/var/lib/libvine/identity\"\n",
            "identity_path = \"/var/lib/libvine/identity\"\nmtu = 1400\n",
        ),
        "unknown-key",
        Error,
        at(5, 1),
    );
    assert_eq!(d.message, "unknown key `mtu` in [node]");
    assert_contains(hint(&d), "belongs in [tun]");
}

#[test]
fn unknown_key_without_suggestion_lists_accepted_keys() {
    let d = only(
        &append("\n[policy]\ncolour = \"red\"\n"),
        "unknown-key",
        Error,
        at(26, 1),
    );
    assert_eq!(
        hint(&d),
        "remove it; [policy] accepts: strict_allowlist, allow_relay, allow_signaling_upgrade, relay_rate_limit_kbps, relay_source_rate_limit_kbps"
    );
}

#[test]
fn unknown_key_in_a_list_entry_names_the_entry() {
    let d = only(
        &edit(
            "relay_capable = true\n",
            "relay_capable = true\nrelay = \"yes\"\n",
        ),
        "unknown-key",
        Error,
        at(19, 1),
    );
    assert_eq!(
        d.message,
        "unknown key `relay` in [[allowed_peers]] entry #1"
    );
    assert_contains(
        hint(&d),
        "peer_id, prefix, relay_capable, name, fingerprint",
    );
}

#[test]
fn unknown_subtable_in_a_section_is_an_unknown_key() {
    let d = only(
        &edit(
            "prefix_len = 24\n",
            "prefix_len = 24\n\n[tun.extra]\nx = 1\n",
        ),
        "unknown-key",
        Error,
        at(10, 6),
    );
    assert_eq!(d.message, "unknown key `extra` in [tun]");
}

#[test]
fn missing_key_points_at_the_section_header() {
    let d = only(
        &edit("prefix_len = 24\n", ""),
        "missing-key",
        Error,
        at(6, 1),
    );
    assert_eq!(d.message, "[tun] is missing the required key `prefix_len`");
    assert_eq!(hint(&d), "add a line such as `prefix_len = 24` to [tun]");
}

#[test]
fn missing_node_name_and_network_id_are_both_reported() {
    let p = parse(&edits(&[
        ("name = \"alpha\"\n", ""),
        ("network_id = \"home-net\"\n", ""),
    ]));
    assert_eq!(codes(&p), ["missing-key", "missing-key"], "{}", dump(&p));
    assert!(p.diagnostics.iter().all(|d| d.location == at(1, 1)));
    assert_contains(hint(&p.diagnostics[0]), "`name = \"alpha\"`");
    assert_contains(hint(&p.diagnostics[1]), "`network_id = \"home-net\"`");
    assert_eq!(
        p.identity_path.as_deref(),
        Some("/var/lib/libvine/identity"),
        "the identity path is known even though [node] has errors"
    );
}

#[test]
fn missing_key_in_a_list_entry_points_at_its_header() {
    let d = only(
        &edit("prefix = \"10.42.2.0/24\"\n", ""),
        "missing-key",
        Error,
        at(20, 1),
    );
    assert_eq!(
        d.message,
        "[[allowed_peers]] entry #2 is missing the required key `prefix`"
    );
    assert_contains(hint(&d), "`prefix = \"10.42.1.0/24\"`");
}

#[test]
fn missing_bootstrap_address() {
    let d = only(
        &edit("address = \"udp://198.51.100.10:4100\"\n", ""),
        "missing-key",
        Error,
        at(10, 1),
    );
    assert_contains(&d.message, "[[bootstrap_peers]] entry #1");
    assert_contains(hint(&d), "udp://198.51.100.10:4100");
}

#[test]
fn missing_peer_id_hint_names_export_public() {
    let d = only(
        &edit(
            &format!("name = \"beta\"\npeer_id = \"{}\"\n", beta()),
            "name = \"beta\"\n",
        ),
        "missing-key",
        Error,
        at(20, 1),
    );
    assert_contains(hint(&d), "vine identity export-public");
}

#[test]
fn wrong_type_quoted_integer_hint_removes_the_quotes() {
    let d = only(
        &edit("prefix_len = 24\n", "prefix_len = 24\nmtu = \"1400\"\n"),
        "wrong-type",
        Error,
        at(9, 7),
    );
    assert_eq!(
        d.message,
        "`mtu` in [tun] must be an integer, found a string"
    );
    assert_eq!(hint(&d), "remove the quotes: `mtu = 1400`");
}

#[test]
fn wrong_type_quoted_boolean_hint_removes_the_quotes() {
    let d = only(
        &edit("relay_capable = true", "relay_capable = \"true\""),
        "wrong-type",
        Error,
        at(18, 17),
    );
    assert_contains(&d.message, "[[allowed_peers]] entry #1 must be a boolean");
    assert_eq!(hint(&d), "remove the quotes: `relay_capable = true`");
}

#[test]
fn wrong_type_unquoted_string_hint_adds_quotes() {
    let d = only(
        &edit("name = \"alpha\"", "name = 42"),
        "wrong-type",
        Error,
        at(2, 8),
    );
    assert_eq!(
        d.message,
        "`name` in [node] must be a string, found an integer"
    );
    assert_eq!(
        hint(&d),
        "put the value in double quotes: `name = \"alpha\"`"
    );
}

#[test]
fn wrong_type_array_for_a_path() {
    let d = only(
        &edit(
            "\"/var/lib/libvine/identity\"",
            "[\"/var/lib/libvine/identity\"]",
        ),
        "wrong-type",
        Error,
        at(4, 17),
    );
    assert_contains(&d.message, "found an array");
}

#[test]
fn wrong_type_float_where_an_integer_is_expected() {
    let d = only(
        &edit("prefix_len = 24", "prefix_len = 24.0"),
        "wrong-type",
        Error,
        at(8, 14),
    );
    assert_eq!(
        d.message,
        "`prefix_len` in [tun] must be an integer, found a float"
    );
    assert_eq!(hint(&d), "write it as `prefix_len = 24`");
}

#[test]
fn wrong_type_datetime_where_an_integer_is_expected() {
    let d = only(
        &edit(
            "prefix_len = 24\n",
            "prefix_len = 24\nmtu = 1979-05-27T07:32:00Z\n",
        ),
        "wrong-type",
        Error,
        at(9, 7),
    );
    assert_contains(&d.message, "found a date-time");
}

#[test]
fn wrong_type_integer_where_a_boolean_is_expected() {
    let d = only(
        &append("\n[policy]\nstrict_allowlist = 1\n"),
        "wrong-type",
        Error,
        at(26, 20),
    );
    assert_eq!(
        d.message,
        "`strict_allowlist` in [policy] must be a boolean, found an integer"
    );
    assert_eq!(hint(&d), "write it as `strict_allowlist = true`");
}

fn with_mtu(mtu: &str) -> String {
    edit(
        "prefix_len = 24\n",
        &format!("prefix_len = 24\nmtu = {mtu}\n"),
    )
}

fn with_listen_port(port: &str) -> String {
    edit(
        "identity_path = \"/var/lib/libvine/identity\"\n",
        &format!("identity_path = \"/var/lib/libvine/identity\"\nlisten_port = {port}\n"),
    )
}

#[test]
fn out_of_range_mtu() {
    for mtu in ["575", "9001", "0", "-1400"] {
        let d = only(&with_mtu(mtu), "out-of-range", Error, at(9, 7));
        assert_eq!(d.message, format!("`mtu = {mtu}` in [tun] is out of range"));
        assert_eq!(hint(&d), "use a value from 576 to 9000");
    }
    assert_eq!(assert_clean(&with_mtu("576")).tun.mtu, 576);
}

#[test]
fn out_of_range_prefix_len() {
    for len in ["7", "33", "40", "-24"] {
        let d = only(
            &edit("prefix_len = 24", &format!("prefix_len = {len}")),
            "out-of-range",
            Error,
            at(8, 14),
        );
        assert_contains(hint(&d), "from 8 to 32");
        assert_contains(hint(&d), "a /24 gives the node 254 overlay addresses");
    }
}

#[test]
fn out_of_range_listen_port() {
    for port in ["0", "65536", "-1"] {
        let d = only(&with_listen_port(port), "out-of-range", Error, at(5, 15));
        assert_eq!(
            d.message,
            format!("`listen_port = {port}` in [node] is out of range")
        );
        assert_contains(hint(&d), "0 (any port) is not allowed");
    }
    assert_eq!(assert_clean(&with_listen_port("1")).node.listen_port, 1);
    assert_eq!(
        assert_clean(&with_listen_port("65535")).node.listen_port,
        65535
    );
}

#[test]
fn out_of_range_integer_beyond_64_bits() {
    let d = only(
        &with_mtu("99999999999999999999"),
        "out-of-range",
        Error,
        at(9, 7),
    );
    assert_eq!(d.message, "`mtu` in [tun] is too large");
    assert_eq!(hint(&d), "use a value such as `mtu = 1400`");

    let d = only(
        &with_mtu("-99999999999999999999"),
        "out-of-range",
        Error,
        at(9, 7),
    );
    assert_eq!(d.message, "`mtu` in [tun] is too small");
}

#[test]
fn integers_in_other_toml_notations_are_accepted() {
    assert_eq!(assert_clean(&with_mtu("1_400")).tun.mtu, 1400);
    assert_eq!(assert_clean(&with_mtu("0x578")).tun.mtu, 1400);
    assert_eq!(assert_clean(&with_mtu("+1400")).tun.mtu, 1400);
}

#[test]
fn out_of_range_allowed_prefix_too_wide() {
    let d = only(
        &edit("\"10.42.1.0/24\"", "\"10.0.0.0/7\""),
        "out-of-range",
        Error,
        at(17, 10),
    );
    assert_eq!(d.message, "prefix 10.0.0.0/7 is too wide for one peer");
    assert_contains(hint(&d), "length 8 to 32");
}

// ---------------------------------------------------------------------------
// [node]
// ---------------------------------------------------------------------------

#[test]
fn invalid_node_name() {
    for bad in ["-alpha", "alpha-", "al pha", "al_pha", ""] {
        let d = only(
            &edit("name = \"alpha\"", &format!("name = \"{bad}\"")),
            "invalid-name",
            Error,
            at(2, 8),
        );
        assert_contains(&d.message, &format!("\"{bad}\""));
        assert_contains(hint(&d), "letters, digits and hyphens");
    }
}

#[test]
fn invalid_allowed_peer_name() {
    let d = only(
        &edit("name = \"beta\"", "name = \"beta_1\""),
        "invalid-name",
        Error,
        at(21, 8),
    );
    assert_contains(&d.message, "\"beta_1\"");
    assert_contains(hint(&d), "\"relay-1\"");
}

#[test]
fn invalid_network_id_uppercase_suggests_lowercase() {
    let d = only(
        &edit("\"home-net\"", "\"Home-Net\""),
        "invalid-network-id",
        Error,
        at(3, 14),
    );
    assert_eq!(
        d.message,
        "network_id \"Home-Net\" is not a valid network id"
    );
    assert_contains(hint(&d), "did you mean \"home-net\"");
}

#[test]
fn invalid_network_id_other_shapes_get_the_rules() {
    for bad in ["home net", "-home", "home.", "héme"] {
        let d = only(
            &edit("\"home-net\"", &format!("\"{bad}\"")),
            "invalid-network-id",
            Error,
            at(3, 14),
        );
        assert_contains(hint(&d), "lowercase letters, digits");
    }
}

#[test]
fn relative_identity_path() {
    let p = parse(&edit("\"/var/lib/libvine/identity\"", "\"identity\""));
    let d = only(
        &edit("\"/var/lib/libvine/identity\"", "\"identity\""),
        "relative-path",
        Error,
        at(4, 17),
    );
    assert_eq!(
        d.message,
        "`identity_path = \"identity\"` is not an absolute path"
    );
    assert_eq!(
        hint(&d),
        "write the full path starting with `/`, e.g. `identity_path = \"/var/lib/libvine/identity\"`"
    );
    assert_eq!(p.identity_path, None);
}

#[test]
fn relative_runtime_dir_still_reports_the_identity_path() {
    let text = edit(
        "identity_path = \"/var/lib/libvine/identity\"\n",
        "identity_path = \"/srv/vine/id\"\nruntime_dir = \"run/vine\"\n",
    );
    let d = only(&text, "relative-path", Error, at(5, 15));
    assert_contains(hint(&d), "`runtime_dir = \"/run/libvine\"`");
    assert_eq!(parse(&text).identity_path.as_deref(), Some("/srv/vine/id"));
}

#[test]
fn path_with_nul_byte_is_rejected() {
    let d = only(
        &edit(
            "\"/var/lib/libvine/identity\"",
            "\"/var/lib/\\u0000identity\"",
        ),
        "relative-path",
        Error,
        at(4, 17),
    );
    assert_contains(&d.message, "\\0");
}

fn with_listen_address(addr: &str) -> String {
    edit(
        "identity_path = \"/var/lib/libvine/identity\"\n",
        &format!("identity_path = \"/var/lib/libvine/identity\"\nlisten_address = \"{addr}\"\n"),
    )
}

#[test]
fn invalid_listen_address() {
    for bad in [
        "224.0.0.1",
        "255.255.255.255",
        "localhost",
        "::",
        "10.0.0.1:4100",
    ] {
        let d = only(
            &with_listen_address(bad),
            "invalid-address",
            Error,
            at(5, 18),
        );
        assert_contains(&d.message, "is not a unicast IPv4 address");
        assert_contains(hint(&d), "\"0.0.0.0\"");
    }
    let config = assert_clean(&with_listen_address("192.0.2.7"));
    assert_eq!(config.node.listen_address, Ipv4Addr::new(192, 0, 2, 7));
}

// ---------------------------------------------------------------------------
// [tun]
// ---------------------------------------------------------------------------

fn with_tun_address(addr: &str) -> String {
    edit("\"10.42.0.1\"", &format!("\"{addr}\""))
}

#[test]
fn invalid_tun_address_with_length_hints_prefix_len() {
    let d = only(
        &with_tun_address("10.42.0.1/24"),
        "invalid-address",
        Error,
        at(7, 11),
    );
    assert_eq!(
        d.message,
        "`address = \"10.42.0.1/24\"` is not an IPv4 address"
    );
    assert_eq!(
        hint(&d),
        "write the address and its length separately: `address = \"10.42.0.1\"` and `prefix_len = 24`"
    );
}

#[test]
fn invalid_tun_address_not_an_address() {
    let d = only(
        &with_tun_address("ten.dot.one"),
        "invalid-address",
        Error,
        at(7, 11),
    );
    assert_contains(hint(&d), "\"10.42.0.1\"");
}

#[test]
fn invalid_tun_address_special_ranges() {
    for (addr, why) in [
        ("0.1.2.3", "this network"),
        ("127.0.0.1", "loopback"),
        ("224.0.0.5", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("169.254.0.1", "link-local"),
    ] {
        let d = only(&with_tun_address(addr), "invalid-address", Error, at(7, 11));
        assert_contains(&d.message, why);
        assert_contains(hint(&d), "private range");
    }
}

#[test]
fn address_not_host_network_address() {
    let d = only(
        &with_tun_address("10.42.0.0"),
        "address-not-host",
        Error,
        at(7, 11),
    );
    assert_eq!(
        d.message,
        "`address = \"10.42.0.0\"` is the network address of its prefix 10.42.0.0/24"
    );
    assert_eq!(
        hint(&d),
        "use a host address inside 10.42.0.0/24, e.g. \"10.42.0.1\""
    );
}

#[test]
fn address_not_host_broadcast_address() {
    let d = only(
        &with_tun_address("10.42.0.255"),
        "address-not-host",
        Error,
        at(7, 11),
    );
    assert_contains(&d.message, "broadcast address of its prefix 10.42.0.0/24");
}

#[test]
fn point_to_point_prefixes_have_no_network_or_broadcast_address() {
    for len in ["31", "32"] {
        let text = edits(&[
            ("\"10.42.0.1\"", "\"10.42.0.0\""),
            ("prefix_len = 24", &format!("prefix_len = {len}")),
        ]);
        assert_clean(&text);
    }
}

#[test]
fn public_overlay_range_is_a_warning() {
    let d = only(
        &with_tun_address("8.8.8.1"),
        "public-overlay-range",
        Warning,
        at(7, 11),
    );
    assert_eq!(
        d.message,
        "the overlay prefix 8.8.8.0/24 is public address space"
    );
    assert_contains(hint(&d), "10.0.0.0/8");
    // Just outside 100.64.0.0/10 is public too.
    only(
        &with_tun_address("100.128.0.1"),
        "public-overlay-range",
        Warning,
        at(7, 11),
    );
}

#[test]
fn private_and_shared_ranges_are_not_public() {
    for addr in ["172.16.5.1", "192.168.7.1", "100.64.0.1", "100.127.255.1"] {
        assert_clean(&with_tun_address(addr));
    }
}

#[test]
fn invalid_tun_name() {
    for (bad, why) in [
        ("vine%d", "'%'"),
        ("this-is-16-bytes", "16 bytes"),
        ("a/b", "'/'"),
        ("", "empty"),
        ("..", "`.` and `..`"),
    ] {
        let d = only(
            &edit("[tun]\n", &format!("[tun]\nname = \"{bad}\"\n")),
            "invalid-tun-name",
            Error,
            at(7, 8),
        );
        assert_contains(&d.message, why);
        assert_contains(hint(&d), "\"vine0\"");
    }
    let config = assert_clean(&edit("[tun]\n", "[tun]\nname = \"vine-overlay-15\"\n"));
    assert_eq!(config.tun.name, "vine-overlay-15");
}

#[test]
fn mtu_exceeds_underlay_is_a_warning() {
    let d = only(&with_mtu("1421"), "mtu-exceeds-underlay", Warning, at(9, 7));
    assert_eq!(d.message, "`mtu = 1421` needs an underlay MTU above 1500");
    assert_contains(hint(&d), "1420 or less");
    only(&with_mtu("9000"), "mtu-exceeds-underlay", Warning, at(9, 7));
    assert_eq!(assert_clean(&with_mtu("1420")).tun.mtu, 1420);
}

fn with_underlay_mtu(mtu: &str) -> String {
    with_listen_port("4100").replace(
        "listen_port = 4100\n",
        &format!("listen_port = 4100\nunderlay_mtu = {mtu}\n"),
    )
}

#[test]
fn underlay_mtu_defaults_to_ethernet_is_ranged_and_bounds_the_tun_mtu() {
    assert_eq!(assert_clean(&baseline()).node.underlay_mtu, 1500);
    // PPPoE: the default TUN MTU (1400) still fits 1492 - 80.
    assert_eq!(
        assert_clean(&with_underlay_mtu("1492")).node.underlay_mtu,
        1492
    );
    for bad in ["575", "9001", "0"] {
        let d = only(&with_underlay_mtu(bad), "out-of-range", Error, at(6, 16));
        assert_eq!(
            d.message,
            format!("`underlay_mtu = {bad}` in [node] is out of range")
        );
        assert_contains(hint(&d), "1492 on PPPoE");
    }
    // A 1460-byte underlay carries a TUN MTU of at most 1380.
    let text =
        with_underlay_mtu("1460").replace("prefix_len = 24\n", "prefix_len = 24\nmtu = 1400\n");
    let d = only(&text, "mtu-exceeds-underlay", Warning, at(11, 7));
    assert_eq!(d.message, "`mtu = 1400` needs an underlay MTU above 1460");
    assert_contains(hint(&d), "1380 or less");
    assert_contains(hint(&d), "underlay_mtu");
    // Jumbo frames everywhere: a big TUN MTU is then fine.
    let jumbo =
        with_underlay_mtu("9000").replace("prefix_len = 24\n", "prefix_len = 24\nmtu = 8920\n");
    assert_eq!(assert_clean(&jumbo).tun.mtu, 8920);
}

// ---------------------------------------------------------------------------
// Peers: ids, addresses, prefixes, fingerprints
// ---------------------------------------------------------------------------

#[test]
fn invalid_peer_id_placeholder_points_at_export_public() {
    let d = only(
        &edit(&format!("\"{}\"", beta()), "\"beta\""),
        "invalid-peer-id",
        Error,
        at(22, 11),
    );
    assert_contains(&d.message, "[[allowed_peers]] entry #2");
    assert_contains(&d.message, "not a vine PeerId");
    assert_contains(hint(&d), "`vine identity export-public`");
}

#[test]
fn invalid_peer_id_cut_off_while_copying() {
    let cut = &beta().to_string()[..40];
    let d = only(
        &edit(&format!("\"{}\"", beta()), &format!("\"{cut}\"")),
        "invalid-peer-id",
        Error,
        at(22, 11),
    );
    assert_contains(&d.message, "40 characters long");
}

#[test]
fn invalid_peer_id_checksum() {
    let text = beta().to_string();
    let last = if text.ends_with('a') { "b" } else { "a" };
    let damaged = format!("{}{last}", &text[..text.len() - 1]);
    let d = only(
        &edit(&format!("\"{text}\""), &format!("\"{damaged}\"")),
        "invalid-peer-id",
        Error,
        at(22, 11),
    );
    assert_contains(&d.message, "checksum");
}

#[test]
fn invalid_peer_id_in_bootstrap_entry() {
    // The relay's id occurs twice; break only the bootstrap one (line 11).
    let text = baseline().replacen(&relay().to_string(), "relay-a", 1);
    let d = only(&text, "invalid-peer-id", Error, at(11, 11));
    assert_contains(&d.message, "[[bootstrap_peers]] entry #1");
}

fn with_bootstrap_address(addr: &str) -> String {
    edit("\"udp://198.51.100.10:4100\"", &format!("\"{addr}\""))
}

#[test]
fn invalid_bootstrap_address_without_scheme() {
    let d = only(
        &with_bootstrap_address("198.51.100.10:4100"),
        "invalid-bootstrap-address",
        Error,
        at(12, 11),
    );
    assert_eq!(
        d.message,
        "bootstrap address \"198.51.100.10:4100\" does not start with udp://"
    );
    assert_eq!(hint(&d), "add the scheme: \"udp://198.51.100.10:4100\"");
}

#[test]
fn invalid_bootstrap_address_other_problems() {
    for (bad, hint_part) in [
        ("tcp://198.51.100.10:4100", "vine only speaks UDP"),
        ("udp://[2001:db8::1]:4100", "IPv4 address or a DNS name"),
        ("udp://198.51.100.10", "default port is 4100"),
        ("udp://198.51.100.10:0", "ports are 1 to 65535"),
        ("udp://0.0.0.0:4100", "udp://HOST:PORT"),
    ] {
        let d = only(
            &with_bootstrap_address(bad),
            "invalid-bootstrap-address",
            Error,
            at(12, 11),
        );
        assert_contains(hint(&d), hint_part);
    }
}

#[test]
fn bootstrap_address_may_be_a_dns_name() {
    let config = assert_clean(&with_bootstrap_address("udp://relay.example.net:4100"));
    assert_eq!(
        config.bootstrap_peers[0].address.to_string(),
        "udp://relay.example.net:4100"
    );
}

fn with_relay_prefix(prefix: &str) -> String {
    edit("\"10.42.1.0/24\"", &format!("\"{prefix}\""))
}

#[test]
fn invalid_prefix_host_bits_suggest_the_canonical_prefix() {
    // The relay's entry fails, so the relay is listed but unusable: that must
    // not also be reported as "bootstrap peer not allowlisted".
    let d = only(
        &with_relay_prefix("10.42.1.5/24"),
        "invalid-prefix",
        Error,
        at(17, 10),
    );
    assert_eq!(d.message, "prefix `10.42.1.5/24` has host bits set");
    assert_eq!(hint(&d), "did you mean \"10.42.1.0/24\"?");
}

#[test]
fn invalid_prefix_malformed() {
    for (bad, msg) in [
        ("10.42.1.0", "not a prefix"),
        ("10.42.1/24", "not an IPv4 address"),
        ("10.42.1.0/33", "not a prefix length"),
    ] {
        let d = only(&with_relay_prefix(bad), "invalid-prefix", Error, at(17, 10));
        assert_contains(&d.message, "[[allowed_peers]] entry #1");
        assert_contains(&d.message, msg);
        assert_contains(hint(&d), "\"10.42.1.0/24\"");
    }
}

fn with_relay_fingerprint(fp: &str) -> String {
    edit(
        "relay_capable = true\n",
        &format!("relay_capable = true\nfingerprint = \"{fp}\"\n"),
    )
}

#[test]
fn fingerprint_mismatch() {
    let d = only(
        &with_relay_fingerprint(&beta().fingerprint().to_string()),
        "fingerprint-mismatch",
        Error,
        at(19, 15),
    );
    assert_contains(&d.message, &beta().fingerprint().to_string());
    assert_contains(&d.message, &relay().fingerprint().to_string());
    assert_contains(hint(&d), "`vine identity export-public`");
}

#[test]
fn matching_fingerprint_is_kept() {
    let config = assert_clean(&with_relay_fingerprint(&relay().fingerprint().to_string()));
    assert_eq!(
        config.allowed_peers[0].fingerprint,
        Some(relay().fingerprint())
    );
}

#[test]
fn invalid_fingerprint() {
    let d = only(
        &with_relay_fingerprint("3f2a-9c01"),
        "invalid-fingerprint",
        Error,
        at(19, 15),
    );
    assert_contains(&d.message, "five groups of four hex digits");
    assert_contains(hint(&d), "vine identity fingerprint");
}

#[test]
fn fingerprint_is_not_compared_with_an_invalid_peer_id() {
    let text = edits(&[
        (&format!("\"{}\"", beta()), "\"beta\""),
        (
            "prefix = \"10.42.2.0/24\"\n",
            &format!(
                "prefix = \"10.42.2.0/24\"\nfingerprint = \"{}\"\n",
                relay().fingerprint()
            ),
        ),
    ]);
    assert_eq!(codes(&parse(&text)), ["invalid-peer-id"]);
}

// ---------------------------------------------------------------------------
// Conflicts between entries
// ---------------------------------------------------------------------------

#[test]
fn duplicate_allowed_peer() {
    let d = only(
        &edit(&format!("\"{}\"", beta()), &format!("\"{}\"", relay())),
        "duplicate-peer",
        Error,
        at(22, 11),
    );
    assert_contains(&d.message, "already enrolled at line 16");
    assert_contains(&d.message, &relay().short());
    assert_contains(hint(&d), "keep one entry");
}

fn with_second_bootstrap(peer: PeerId, addr: &str) -> String {
    // The new entry's peer_id is on line 15 and its address on line 16.
    edit(
        "address = \"udp://198.51.100.10:4100\"\n",
        &format!(
            "address = \"udp://198.51.100.10:4100\"\n\n[[bootstrap_peers]]\npeer_id = \"{peer}\"\naddress = \"{addr}\"\n"
        ),
    )
}

#[test]
fn duplicate_bootstrap_peer() {
    let d = only(
        &with_second_bootstrap(relay(), "udp://198.51.100.11:4100"),
        "duplicate-peer",
        Error,
        at(15, 11),
    );
    assert_contains(&d.message, "already listed at line 11");
    assert_contains(hint(&d), "list each bootstrap peer once");
}

#[test]
fn duplicate_bootstrap_address_is_a_warning() {
    let d = only(
        &with_second_bootstrap(beta(), "udp://198.51.100.10:4100"),
        "duplicate-address",
        Warning,
        at(16, 11),
    );
    assert_eq!(
        d.message,
        "bootstrap address udp://198.51.100.10:4100 is also used at line 11"
    );
}

#[test]
fn overlapping_prefix() {
    let d = only(
        &edit("\"10.42.2.0/24\"", "\"10.42.1.128/25\""),
        "overlapping-prefix",
        Error,
        at(23, 10),
    );
    assert_eq!(
        d.message,
        "prefix 10.42.1.128/25 overlaps 10.42.1.0/24 of the peer at line 16"
    );
    assert_contains(hint(&d), "a prefix of its own");
}

#[test]
fn overlapping_local_prefix() {
    let d = only(
        &edit("\"10.42.2.0/24\"", "\"10.42.0.0/24\""),
        "overlapping-local-prefix",
        Error,
        at(23, 10),
    );
    assert_eq!(
        d.message,
        "prefix 10.42.0.0/24 overlaps this node's own prefix 10.42.0.0/24 (from [tun])"
    );
    assert_contains(hint(&d), "[tun] address/prefix_len");
}

#[test]
fn a_prefix_overlapping_everything_is_reported_for_each() {
    let p = parse(&edit("\"10.42.2.0/24\"", "\"10.0.0.0/8\""));
    assert_eq!(
        codes(&p),
        ["overlapping-prefix", "overlapping-local-prefix"],
        "{}",
        dump(&p)
    );
    assert!(p.diagnostics.iter().all(|d| d.location == at(23, 10)));
}

// ---------------------------------------------------------------------------
// Policy and list warnings
// ---------------------------------------------------------------------------

#[test]
fn no_allowed_peers_is_a_file_level_warning() {
    let text = format!("{NODE_BLOCK}{TUN_BLOCK}");
    let d = only(&text, "no-allowed-peers", Warning, None);
    assert_contains(hint(&d), "`vine identity export-public`");
}

#[test]
fn empty_allowed_peers_array_is_no_allowed_peers() {
    let text = format!("allowed_peers = []\n{NODE_BLOCK}{TUN_BLOCK}");
    only(&text, "no-allowed-peers", Warning, None);
}

#[test]
fn relay_without_relay_peer() {
    let text = edit("relay_capable = true", "relay_capable = false");
    let d = only(&text, "relay-without-relay-peer", Warning, None);
    assert_contains(hint(&d), "relay_capable = true");
    assert_contains(hint(&d), "allow_relay = false");
}

#[test]
fn relay_without_relay_peer_points_at_allow_relay_when_written() {
    let text = format!(
        "{}\n[policy]\nallow_relay = true\n",
        edit("relay_capable = true", "relay_capable = false")
    );
    only(&text, "relay-without-relay-peer", Warning, at(26, 15));
    let off = format!(
        "{}\n[policy]\nallow_relay = false\n",
        edit("relay_capable = true", "relay_capable = false")
    );
    assert!(!assert_clean(&off).policy.allow_relay);
}

#[test]
fn signaling_without_bootstrap() {
    let text = edit(&bootstrap_block(), "");
    let d = only(&text, "signaling-without-bootstrap", Warning, None);
    assert_contains(hint(&d), "allow_signaling_upgrade = false");

    let written = format!("{text}\n[policy]\nallow_signaling_upgrade = true\n");
    only(&written, "signaling-without-bootstrap", Warning, at(22, 27));
    assert_clean(&format!(
        "{text}\n[policy]\nallow_signaling_upgrade = false\n"
    ));
}

#[test]
fn bootstrap_not_allowlisted() {
    // The bootstrap entry (line 11) names a peer with no allowlist entry.
    let text = baseline().replacen(&relay().to_string(), &stranger().to_string(), 1);
    let d = only(&text, "bootstrap-not-allowlisted", Warning, at(11, 11));
    assert_contains(&d.message, &stranger().short());
    assert_contains(hint(&d), "strict_allowlist = false");

    let relaxed = format!("{text}\n[policy]\nstrict_allowlist = false\n");
    assert!(!assert_clean(&relaxed).policy.strict_allowlist);
}

#[test]
fn list_warnings_wait_until_every_entry_is_understood() {
    // The only relay_capable entry is broken; "no relay" would be a false
    // second complaint about the same line.
    // Nor is the bootstrap peer "not allowlisted": its entry is there, broken.
    only(
        &edit(
            &format!("name = \"relay\"\npeer_id = \"{}\"", relay()),
            "name = \"relay\"\npeer_id = \"relay\"",
        ),
        "invalid-peer-id",
        Error,
        at(16, 11),
    );
}

#[test]
fn self_in_allowlist_and_self_as_bootstrap() {
    let mut p = parse(&baseline());
    assert!(p.config.is_some());
    p.check_local_peer(relay());
    assert_eq!(
        codes(&p),
        ["self-as-bootstrap", "self-in-allowlist"],
        "{}",
        dump(&p)
    );
    let boot = find(&p, "self-as-bootstrap");
    assert_eq!(boot.severity, Error);
    assert_eq!(boot.location, at(11, 11));
    assert_eq!(
        boot.message,
        "[[bootstrap_peers]] entry #1 is this node itself"
    );
    assert_contains(hint(boot), "not itself");
    let allow = find(&p, "self-in-allowlist");
    assert_eq!(allow.severity, Error);
    assert_eq!(allow.location, at(16, 11));
    assert_eq!(
        allow.message,
        "[[allowed_peers]] entry #1 is this node itself"
    );
    assert_contains(hint(allow), "through [tun]");
    assert!(p.config.is_none(), "an error withdraws the config");
}

#[test]
fn check_local_peer_accepts_a_node_that_is_not_listed() {
    let mut p = parse(&baseline());
    p.check_local_peer(stranger());
    assert!(p.diagnostics.is_empty(), "{}", dump(&p));
    assert!(p.config.is_some());
}

#[test]
fn host_findings_are_merged_in_order_and_errors_withdraw_the_config() {
    let mut p = parse(&with_mtu("1500"));
    assert!(p.config.is_some());
    let loc = p.locate("node.identity_path");
    p.push(
        Diagnostic::error("identity-missing", "no identity")
            .hint("create it")
            .at(loc),
    );
    assert_eq!(codes(&p), ["identity-missing", "mtu-exceeds-underlay"]);
    assert_eq!(p.counts(), (1, 1));
    assert!(p.config.is_none());
}

// ---------------------------------------------------------------------------
// Many problems at once
// ---------------------------------------------------------------------------

#[test]
fn many_problems_are_all_reported_in_one_run_sorted_by_line() {
    let text = edits(&[
        ("name = \"alpha\"", "name = \"-alpha\""),
        ("\"home-net\"", "\"Home-Net\""),
        ("\"10.42.0.1\"", "\"10.42.0.1/24\""),
        ("prefix_len = 24", "prefix_len = 40"),
        (
            "\"udp://198.51.100.10:4100\"",
            "\"tcp://198.51.100.10:4100\"",
        ),
        ("\"10.42.1.0/24\"", "\"10.42.1.5/24\""),
        (&format!("\"{}\"", beta()), "\"beta\""),
    ]);
    let p = parse(&text);
    let found: Vec<(&str, Option<Location>)> =
        p.diagnostics.iter().map(|d| (d.code, d.location)).collect();
    assert_eq!(
        found,
        [
            ("invalid-name", at(2, 8)),
            ("invalid-network-id", at(3, 14)),
            ("invalid-address", at(7, 11)),
            ("out-of-range", at(8, 14)),
            ("invalid-bootstrap-address", at(12, 11)),
            ("invalid-prefix", at(17, 10)),
            ("invalid-peer-id", at(22, 11)),
        ],
        "{}",
        dump(&p)
    );
    assert!(p.diagnostics.iter().all(Diagnostic::is_error));
    assert_eq!(p.counts(), (7, 0));
    assert!(p.config.is_none());
    assert_eq!(
        p.identity_path.as_deref(),
        Some("/var/lib/libvine/identity")
    );
}

#[test]
fn file_level_findings_come_first() {
    let text = format!("{NODE_BLOCK}{TUN_BLOCK}")
        .replace("prefix_len = 24", "prefix_len = 24\nmtu = 1500");
    let p = parse(&text);
    assert_eq!(
        codes(&p),
        ["no-allowed-peers", "mtu-exceeds-underlay"],
        "{}",
        dump(&p)
    );
}

// ---------------------------------------------------------------------------
// Defaults and the template
// ---------------------------------------------------------------------------

#[test]
fn defaults_fill_every_optional_key() {
    let p = parse(
        "[node]\nname = \"alpha\"\nnetwork_id = \"home-net\"\n\n[tun]\naddress = \"10.42.0.1\"\nprefix_len = 24\n",
    );
    assert_eq!(codes(&p), ["no-allowed-peers"], "{}", dump(&p));
    assert_eq!(p.identity_path.as_deref(), Some(DEFAULT_IDENTITY_PATH));
    let c = p.config.expect("warnings only");
    assert_eq!(c.node.listen_port, 4100);
    assert_eq!(c.node.listen_address, Ipv4Addr::UNSPECIFIED);
    assert_eq!(c.node.identity_path, "/var/lib/libvine/identity");
    assert_eq!(c.node.runtime_dir, "/run/libvine");
    assert_eq!(c.tun.name, "vine0");
    assert_eq!(c.tun.mtu, 1400);
    assert!(c.bootstrap_peers.is_empty());
    assert!(c.allowed_peers.is_empty());
    assert!(c.policy.strict_allowlist);
    assert!(c.policy.allow_relay);
    assert!(c.policy.allow_signaling_upgrade);
    assert_eq!(c.policy, Policy::default());
}

#[test]
fn empty_policy_section_gets_the_defaults() {
    assert_eq!(
        assert_clean(&append("\n[policy]\n")).policy,
        Policy::default()
    );
}

fn template_params(local: Option<PeerId>) -> TemplateParams {
    TemplateParams {
        name: "gamma-2".into(),
        network_id: "lab.net_1".into(),
        identity_path: "/srv/vine/identity".into(),
        runtime_dir: "/run/vine-lab".into(),
        listen_port: 51820,
        tun_name: "vlab0".into(),
        address: Ipv4Addr::new(100, 64, 3, 1),
        prefix_len: 22,
        local,
    }
}

#[test]
fn template_without_identity_parses_and_round_trips() {
    let params = template_params(None);
    let text = template(&params);
    assert_contains(&text, "vine identity init --identity /srv/vine/identity");
    let p = parse(&text);
    assert!(!p.has_errors(), "{}", dump(&p));
    assert_eq!(codes(&p), ["no-allowed-peers"], "{}", dump(&p));
    let c = p.config.expect("the template is valid");
    assert_eq!(c.node.name, params.name);
    assert_eq!(c.node.network_id, params.network_id);
    assert_eq!(c.node.identity_path, params.identity_path);
    assert_eq!(c.node.runtime_dir, params.runtime_dir);
    assert_eq!(c.node.listen_port, params.listen_port);
    assert_eq!(c.node.listen_address, Ipv4Addr::UNSPECIFIED);
    assert_eq!(c.tun.name, params.tun_name);
    assert_eq!(c.tun.address, params.address);
    assert_eq!(c.tun.prefix_len, params.prefix_len);
    assert_eq!(c.tun.mtu, DEFAULT_MTU);
    assert_contains(&text, "(100.64.0.0/22)");
    assert_eq!(c.policy, Policy::default());
    assert!(c.bootstrap_peers.is_empty() && c.allowed_peers.is_empty());
}

#[test]
fn template_with_identity_parses_and_shows_it() {
    let me = relay();
    let text = template(&template_params(Some(me)));
    assert_contains(&text, &me.to_string());
    assert_contains(&text, &me.fingerprint().to_string());
    let mut p = parse(&text);
    assert_eq!(codes(&p), ["no-allowed-peers"], "{}", dump(&p));
    p.check_local_peer(me);
    assert!(!p.has_errors());
    assert!(p.config.is_some());
}

#[test]
fn template_with_defaults_matches_the_documented_defaults() {
    let text = template(&TemplateParams {
        name: "alpha".into(),
        network_id: "home-net".into(),
        identity_path: DEFAULT_IDENTITY_PATH.into(),
        runtime_dir: DEFAULT_RUNTIME_DIR.into(),
        listen_port: DEFAULT_LISTEN_PORT,
        tun_name: DEFAULT_TUN_NAME.into(),
        address: Ipv4Addr::new(10, 42, 0, 1),
        prefix_len: 24,
        local: None,
    });
    let from_template = parse(&text).config.expect("valid");
    let minimal = parse("[node]\nname = \"alpha\"\nnetwork_id = \"home-net\"\n[tun]\naddress = \"10.42.0.1\"\nprefix_len = 24\n")
        .config
        .expect("valid");
    assert_eq!(from_template, minimal);
}

// ---------------------------------------------------------------------------
// Hostile input: never panic, always place findings inside the text
// ---------------------------------------------------------------------------

/// Parses `text` and checks the invariants that hold for any input.
fn survives(text: &str) -> Parsed {
    let mut p = parse(text);
    let lines = text.split('\n').count();
    for d in &p.diagnostics {
        if let Some(l) = d.location {
            assert!(l.line >= 1 && l.line <= lines, "{l:?} outside the text");
            assert!(l.column >= 1);
        }
        assert!(!d.message.is_empty());
        let _ = d.render("vine.toml");
    }
    assert_eq!(p.config.is_some(), !p.has_errors());
    let sorted = p.diagnostics.windows(2).all(|w| {
        w[0].location.map(|l| (l.line, l.column)) <= w[1].location.map(|l| (l.line, l.column))
    });
    assert!(sorted, "findings out of order:\n{}", dump(&p));
    p.check_local_peer(relay());
    p
}

#[test]
fn empty_input_reports_the_missing_sections() {
    let p = survives("");
    assert_eq!(
        codes(&p),
        ["missing-section", "missing-section", "no-allowed-peers"],
        "{}",
        dump(&p)
    );
    assert!(p.config.is_none());
}

#[test]
fn comments_only_input_is_like_empty_input() {
    let p = survives("# vine.toml\n\n   # nothing here yet\r\n");
    assert_eq!(codes(&p), codes(&parse("")));
}

#[test]
fn binary_junk_does_not_panic() {
    // A fixed pseudo-random byte stream, made UTF-8 by lossy decoding.
    let mut state: u32 = 0x1234_5678;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            state.to_be_bytes()[0]
        })
        .collect();
    let p = survives(&String::from_utf8_lossy(&bytes));
    assert!(p.has_errors());
    let p = survives("\0\u{1}\u{7f}\u{fffd}[[[\u{0}]]]=\"\\");
    assert!(codes(&p).contains(&"syntax"));
}

#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    for depth in [100, 5_000, 100_000] {
        survives(&format!("x = {}{}", "[".repeat(depth), "]".repeat(depth)));
        survives(&format!("x = {}", "[".repeat(depth)));
        survives(&format!(
            "x = {}1{}",
            "{ a = ".repeat(depth),
            " }".repeat(depth)
        ));
        survives(&format!("{}a = 1", "a.".repeat(depth)));
    }
    let p = survives(&format!(
        "{}x = {}{}",
        baseline(),
        "[".repeat(5_000),
        "]".repeat(5_000)
    ));
    assert!(p.has_errors());
}

#[test]
fn huge_integers_do_not_panic() {
    for n in [
        "99999999999999999999",
        "-99999999999999999999",
        "9223372036854775807",
        "-9223372036854775808",
        "0xffffffffffffffffffff",
        "0o7777777777777777777777777",
    ] {
        let p = survives(&with_mtu(n));
        assert_eq!(find(&p, "out-of-range").location, at(9, 7));
        let p = survives(&edit("prefix_len = 24", &format!("prefix_len = {n}")));
        assert_eq!(find(&p, "out-of-range").location, at(8, 14));
        let p = survives(&with_listen_port(n));
        assert_eq!(find(&p, "out-of-range").location, at(5, 15));
    }
}

#[test]
fn negative_numbers_floats_and_datetimes_where_integers_belong() {
    for v in [
        "-1",
        "-0",
        "1400.5",
        "1e3",
        "inf",
        "nan",
        "-inf",
        "1979-05-27",
        "07:32:00",
        "1979-05-27T07:32:00",
    ] {
        let p = survives(&with_mtu(v));
        assert_eq!(p.diagnostics.len(), 1, "{}", dump(&p));
        let d = &p.diagnostics[0];
        assert!(
            matches!(d.code, "out-of-range" | "wrong-type"),
            "{}",
            dump(&p)
        );
        assert_eq!(d.location, at(9, 7));
    }
}

#[test]
fn non_ascii_keys_and_values_do_not_panic_and_count_columns_in_characters() {
    let p = survives(&edit(
        "name = \"alpha\"\n",
        "name = \"alpha\"\n\"ключ\" = \"значение\"\n",
    ));
    let d = find(&p, "unknown-key");
    assert_eq!(d.location, at(3, 1));
    assert_contains(&d.message, "`ключ`");

    let p = survives(&edit("name = \"alpha\"", "name = \"ålpha\""));
    assert_eq!(find(&p, "invalid-name").location, at(2, 8));

    // "ø" is two bytes but one column: `mtu`'s value is at character 24.
    let text = format!(
        "tun = {{ \"ø\" = 1, mtu = 9999, address = \"10.42.0.1\", prefix_len = 24 }}\n{NODE_BLOCK}{}{}",
        bootstrap_block(),
        allowed_blocks()
    );
    let p = survives(&text);
    assert_eq!(codes(&p), ["unknown-key", "out-of-range"], "{}", dump(&p));
    assert_eq!(find(&p, "unknown-key").location, at(1, 9));
    assert_eq!(find(&p, "out-of-range").location, at(1, 24));

    let p = survives(&edit("\"10.42.0.1\"", "\"１０.42.0.1\""));
    assert_eq!(find(&p, "invalid-address").location, at(7, 11));
    survives(&edit("[tun]\n", "[tun]\nname = \"vïne0\"\n"));
    survives("[nöde]\nnäme = \"ålpha\"\n[[🌱]]\n");
}

#[test]
fn very_long_keys_and_values_are_cut_in_messages() {
    let long = "k".repeat(10_000);
    let p = survives(&edit(
        "prefix_len = 24\n",
        &format!("prefix_len = 24\n{long} = 1\n"),
    ));
    let d = find(&p, "unknown-key");
    assert!(
        d.message.len() < 200,
        "message not cut: {} bytes",
        d.message.len()
    );
    let p = survives(&format!("{long} = 1\n{}", baseline()));
    assert!(find(&p, "unknown-section").message.len() < 200);
    survives(&edit("\"beta\"", &format!("\"{}\"", "é".repeat(100_000))));
}

#[test]
fn line_endings_and_bom_are_handled() {
    assert_clean(&baseline().replace('\n', "\r\n"));
    assert_clean(&format!("\u{feff}{}", baseline()));
    let p = survives(&with_mtu("\"1400\"").replace('\n', "\r\n"));
    assert_eq!(find(&p, "wrong-type").location, at(9, 7));
}

#[test]
fn many_entries_are_handled() {
    let mut text = format!("{NODE_BLOCK}{TUN_BLOCK}");
    for i in 0..500u32 {
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&i.to_be_bytes());
        seed[31] = 7;
        let id = Identity::from_seed(seed).peer_id();
        text.push_str(&format!(
            "[[allowed_peers]]\npeer_id = \"{id}\"\nprefix = \"10.{}.{}.0/24\"\nrelay_capable = true\n",
            100 + i / 256,
            i % 256
        ));
    }
    let p = survives(&text);
    assert!(p.config.is_some(), "{}", dump(&p));
    assert_eq!(p.config.expect("valid").allowed_peers.len(), 500);
}

// ---------------------------------------------------------------------------
// The public name and address validators
// ---------------------------------------------------------------------------

#[test]
fn validate_node_name_rules() {
    for ok in ["a", "alpha", "relay-1", "A1", "0", "x".repeat(63).as_str()] {
        assert_eq!(validate_node_name(ok), Ok(()), "{ok:?}");
    }
    for bad in [
        "",
        "-a",
        "a-",
        "a_b",
        "a.b",
        "a b",
        "ä",
        "a\n",
        "x".repeat(64).as_str(),
    ] {
        let (msg, hint) = validate_node_name(bad).expect_err("invalid name");
        assert_contains(&msg, "is not a valid name");
        assert_contains(&hint, "1 to 63");
    }
    let (msg, _) = validate_node_name("a\nb").expect_err("newline");
    assert_contains(&msg, "\\n");
}

#[test]
fn validate_network_id_rules() {
    for ok in ["home-net", "a", "lab.net_1", "0", "x".repeat(64).as_str()] {
        assert_eq!(validate_network_id(ok), Ok(()), "{ok:?}");
    }
    for bad in [
        "",
        "-a",
        "a-",
        ".a",
        "a_",
        "a b",
        "a/b",
        "ü",
        "x".repeat(65).as_str(),
    ] {
        let (msg, hint) = validate_network_id(bad).expect_err("invalid id");
        assert_contains(&msg, "is not a valid network id");
        assert_contains(&hint, "lowercase letters");
    }
}

#[test]
fn validate_network_id_uppercase_suggests_lowercase() {
    let (msg, hint) = validate_network_id("Home-Net").expect_err("uppercase");
    assert_eq!(msg, "network_id \"Home-Net\" is not a valid network id");
    assert_contains(&hint, "did you mean \"home-net\"?");
    // Lowercasing alone would not fix it: no suggestion.
    let (_, hint) = validate_network_id("Home Net").expect_err("space");
    assert!(!hint.contains("did you mean"), "{hint}");
}

#[test]
fn validate_tun_name_rules() {
    assert_eq!(validate_tun_name(&"a".repeat(15)), Ok(()));
    for ok in ["vine0", "wg-home", "v_1.2"] {
        assert_eq!(validate_tun_name(ok), Ok(()), "{ok:?}");
    }
    for (bad, why) in [
        ("a".repeat(16).as_str(), "16 bytes long"),
        ("a/b", "'/'"),
        ("a:b", "':'"),
        ("vine%d", "'%'"),
        (" ", "' '"),
        ("a\tb", "'\\t'"),
        ("a\u{1}", "'\\u{1}'"),
        ("vïne", "'ï'"),
        (".", "`.` and `..`"),
        ("..", "`.` and `..`"),
        ("", "empty"),
    ] {
        let (msg, hint) = validate_tun_name(bad).expect_err("invalid tun name");
        assert_contains(&msg, why);
        assert_contains(&hint, "up to 15");
    }
    // Eight two-byte characters are 16 bytes: the byte limit wins.
    let (msg, _) = validate_tun_name(&"é".repeat(8)).expect_err("16 bytes");
    assert_contains(&msg, "16 bytes long");
}

#[test]
fn parse_udp_address_accepts_ipv4_and_dns_names() {
    assert_eq!(
        parse_udp_address("udp://198.51.100.10:4100"),
        Ok(UdpAddress {
            host: "198.51.100.10".into(),
            port: 4100
        })
    );
    let a = parse_udp_address("udp://relay.example.net:1").expect("dns name");
    assert_eq!((a.host.as_str(), a.port), ("relay.example.net", 1));
    assert_eq!(
        parse_udp_address("udp://r-1:65535")
            .expect("short name")
            .port,
        65535
    );
}

#[test]
fn parse_udp_address_rejections() {
    let cases = [
        (
            "198.51.100.10:4100",
            "does not start with udp://",
            "add the scheme: \"udp://198.51.100.10:4100\"",
        ),
        (
            "tcp://198.51.100.10:4100",
            "does not start with udp://",
            "write \"udp://198.51.100.10:4100\" (not tcp://)",
        ),
        (
            "udp://[2001:db8::1]:4100",
            "is IPv6",
            "IPv4 address or a DNS name",
        ),
        ("udp://198.51.100.10", "has no port", "default port is 4100"),
        (
            "udp://198.51.100.10:",
            "has an invalid port",
            "ports are 1 to 65535",
        ),
        (
            "udp://198.51.100.10:0",
            "has an invalid port",
            "ports are 1 to 65535",
        ),
        (
            "udp://198.51.100.10:70000",
            "has an invalid port",
            "ports are 1 to 65535",
        ),
        (
            "udp://198.51.100.10:+80",
            "has an invalid port",
            "ports are 1 to 65535",
        ),
        (
            "udp://198.51.100.10:http",
            "has an invalid port",
            "ports are 1 to 65535",
        ),
        (
            "udp://0.0.0.0:4100",
            "invalid host \"0.0.0.0\"",
            "udp://HOST:PORT",
        ),
        ("udp://224.0.0.1:4100", "invalid host", "udp://HOST:PORT"),
        (
            "udp://255.255.255.255:4100",
            "invalid host",
            "udp://HOST:PORT",
        ),
        ("udp://999.1.1.1:4100", "invalid host", "udp://HOST:PORT"),
        ("udp://:4100", "invalid host \"\"", "udp://HOST:PORT"),
        ("udp://-relay:4100", "invalid host", "udp://HOST:PORT"),
        ("udp://relay..net:4100", "invalid host", "udp://HOST:PORT"),
        ("udp://re lay:4100", "invalid host", "udp://HOST:PORT"),
        ("", "does not start with udp://", "add the scheme"),
    ];
    for (text, msg_part, hint_part) in cases {
        let (msg, hint) = parse_udp_address(text).expect_err(text);
        assert_contains(&msg, msg_part);
        assert_contains(&hint, hint_part);
    }
}

// ---------------------------------------------------------------------------
// Machine-readable form
// ---------------------------------------------------------------------------

#[test]
fn diagnostics_serialize_with_flat_line_and_column() {
    let p = parse(&with_mtu("\"1400\""));
    let json = serde_json::to_value(&p.diagnostics[0]).expect("serializable");
    assert_eq!(
        json,
        serde_json::json!({
            "severity": "error",
            "code": "wrong-type",
            "line": 9,
            "column": 7,
            "message": "`mtu` in [tun] must be an integer, found a string",
            "hint": "remove the quotes: `mtu = 1400`",
        })
    );
    let file_level = parse("");
    let json = serde_json::to_value(&file_level.diagnostics[0]).expect("serializable");
    assert!(json.get("line").is_none() && json.get("column").is_none());
}

#[test]
fn peer_prefix_in_loopback_or_multicast_is_an_error() {
    for bad in ["127.0.0.0/24", "224.0.0.0/24", "0.0.0.0/8"] {
        let p = parse(&edit(
            "prefix = \"10.42.2.0/24\"",
            &format!("prefix = \"{bad}\""),
        ));
        let d = find(&p, "invalid-prefix");
        assert_eq!(d.location, at(23, 10), "{bad}");
        assert!(p.config.is_none());
    }
}

#[test]
fn public_peer_prefix_is_a_warning() {
    let p = parse(&edit(
        "prefix = \"10.42.2.0/24\"",
        "prefix = \"203.0.113.0/24\"",
    ));
    let d = find(&p, "public-overlay-range");
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!(d.location, at(23, 10));
    assert!(p.config.is_some());
}

#[test]
fn uppercase_scheme_gets_a_lowercase_hint() {
    let (_, hint) = parse_udp_address("UDP://198.51.100.10:4100").expect_err("uppercase");
    assert!(hint.contains("lowercase"), "{hint}");
}

#[test]
fn template_quotes_hostile_values_so_only_the_value_is_judged() {
    let params = TemplateParams {
        name: "we\"ird\\name".into(),
        network_id: "home-net".into(),
        identity_path: "/var/lib/libvine/identity".into(),
        runtime_dir: "/run/libvine".into(),
        listen_port: 4100,
        tun_name: "vine0".into(),
        address: Ipv4Addr::new(10, 42, 0, 1),
        prefix_len: 24,
        local: None,
    };
    let p = parse(&template(&params));
    assert_eq!(
        codes(&p).iter().filter(|c| **c == "syntax").count(),
        0,
        "{}",
        dump(&p)
    );
    assert!(codes(&p).contains(&"invalid-name"), "{}", dump(&p));
}

mod relay_rate;

/// The baseline of a node that relays for others: `act_as_relay = true` is
/// line 5, and every later line moves down by one.
fn as_relay() -> String {
    edit(
        "identity_path = \"/var/lib/libvine/identity\"\n",
        "identity_path = \"/var/lib/libvine/identity\"\nact_as_relay = true\n",
    )
}

mod relay_opt_in;
