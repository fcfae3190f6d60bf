//! `[node] act_as_relay` (relaying is opt-in on the relaying node) and
//! `[policy] relay_source_rate_limit_kbps` (the per-source relay cap), and
//! the warnings that tie them together.

use super::*;

/// The baseline with `line` added to `[node]` (as line 5).
fn with_node_line(line: &str) -> String {
    edit(
        "identity_path = \"/var/lib/libvine/identity\"\n",
        &format!("identity_path = \"/var/lib/libvine/identity\"\n{line}\n"),
    )
}

/// `node` with `[policy]` holding `lines`: the first is line 26 after
/// [`baseline`], line 27 after [`as_relay`].
fn with_policy(node: String, lines: &str) -> String {
    format!("{node}\n[policy]\n{lines}\n")
}

#[test]
fn act_as_relay_defaults_to_off_and_is_read() {
    assert!(!assert_clean(&baseline()).node.act_as_relay);
    assert!(
        !assert_clean(&with_node_line("act_as_relay = false"))
            .node
            .act_as_relay
    );
    let c = assert_clean(&as_relay());
    assert!(c.node.act_as_relay);
    assert_eq!(c.node.name, "alpha", "other [node] keys are kept");
}

#[test]
fn act_as_relay_reaches_the_node_config() {
    let me = Identity::from_seed([9; 32]);
    let nc = |text: &str| {
        crate::node::NodeConfig::from_config(&assert_clean(text), &me, |_, _| None).expect("valid")
    };
    assert!(
        !nc(&baseline()).relay_enabled,
        "not opted in: relays nothing"
    );
    assert!(nc(&as_relay()).relay_enabled);
}

#[test]
fn act_as_relay_must_be_a_boolean() {
    let d = only(
        &with_node_line("act_as_relay = \"true\""),
        "wrong-type",
        Error,
        at(5, 16),
    );
    assert_eq!(
        d.message,
        "`act_as_relay` in [node] must be a boolean, found a string"
    );
    assert_eq!(hint(&d), "remove the quotes: `act_as_relay = true`");
    let d = only(
        &with_node_line("act_as_relay = 1"),
        "wrong-type",
        Error,
        at(5, 16),
    );
    assert_contains(&d.message, "must be a boolean, found an integer");
    assert_contains(hint(&d), "act_as_relay = false");
}

#[test]
fn act_as_relay_in_the_wrong_section_or_misspelt_is_explained() {
    let d = only(
        &with_policy(baseline(), "act_as_relay = true"),
        "unknown-key",
        Error,
        at(26, 1),
    );
    assert_contains(hint(&d), "`act_as_relay` belongs in [node], not [policy]");
    let d = only(
        &with_node_line("act_as_rleay = true"),
        "unknown-key",
        Error,
        at(5, 1),
    );
    assert_eq!(hint(&d), "did you mean `act_as_relay`?");
}

#[test]
fn the_source_cap_defaults_to_a_finite_rate_and_is_read() {
    assert_eq!(
        assert_clean(&baseline())
            .policy
            .relay_source_rate_limit_kbps,
        DEFAULT_RELAY_SOURCE_RATE_LIMIT_KBPS
    );
    assert_eq!(DEFAULT_RELAY_SOURCE_RATE_LIMIT_KBPS, 50_000);
    for (line, kbps) in [
        ("relay_source_rate_limit_kbps = 0", 0),
        ("relay_source_rate_limit_kbps = 64", 64),
        ("relay_source_rate_limit_kbps = 100_000", 100_000),
        ("relay_source_rate_limit_kbps = 10000000", 10_000_000),
    ] {
        let c = assert_clean(&with_policy(as_relay(), line));
        assert_eq!(c.policy.relay_source_rate_limit_kbps, kbps, "{line}");
        assert_eq!(
            c.policy.relay_rate_limit_kbps, 0,
            "the pair cap keeps its default"
        );
    }
}

#[test]
fn out_of_range_or_mistyped_source_cap_is_an_error() {
    for n in ["-1", "10000001"] {
        let d = only(
            &with_policy(as_relay(), &format!("relay_source_rate_limit_kbps = {n}")),
            "out-of-range",
            Error,
            at(27, 32),
        );
        assert_eq!(
            d.message,
            format!("`relay_source_rate_limit_kbps = {n}` in [policy] is out of range")
        );
        assert_eq!(
            hint(&d),
            "use a value from 0 to 10000000 kbit/s; 0 means unlimited"
        );
    }
    let d = only(
        &with_policy(as_relay(), "relay_source_rate_limit_kbps = \"50000\""),
        "wrong-type",
        Error,
        at(27, 32),
    );
    assert_eq!(
        hint(&d),
        "remove the quotes: `relay_source_rate_limit_kbps = 50000`"
    );
    let d = only(
        &with_policy(as_relay(), "relay_source_rate_limt_kbps = 100"),
        "unknown-key",
        Error,
        at(27, 1),
    );
    assert_eq!(hint(&d), "did you mean `relay_source_rate_limit_kbps`?");
}

#[test]
fn a_very_low_source_cap_is_a_warning() {
    let d = only(
        &with_policy(as_relay(), "relay_source_rate_limit_kbps = 8"),
        "relay-rate-limit-low",
        Warning,
        at(27, 32),
    );
    assert_eq!(
        d.message,
        "`relay_source_rate_limit_kbps = 8` leaves relayed sessions too little room for their handshakes and probes"
    );
}

#[test]
fn relay_caps_on_a_node_that_does_not_relay_are_a_warning_with_the_fix() {
    let d = only(
        &with_policy(baseline(), "relay_rate_limit_kbps = 10000"),
        "relay-limit-without-relaying",
        Warning,
        at(26, 25),
    );
    assert_eq!(
        d.message,
        "`relay_rate_limit_kbps = 10000` has no effect: this node does not relay for others ([node] act_as_relay = false)"
    );
    assert_eq!(
        hint(&d),
        "to make this node a relay, set `act_as_relay = true` in [node]; on a node that only uses relays, remove `relay_rate_limit_kbps`"
    );
    let p = parse(&with_policy(
        baseline(),
        "relay_rate_limit_kbps = 100\nrelay_source_rate_limit_kbps = 1000",
    ));
    assert_eq!(
        codes(&p),
        [
            "relay-limit-without-relaying",
            "relay-limit-without-relaying"
        ],
        "{}",
        dump(&p)
    );
    assert_eq!(p.diagnostics[1].location, at(27, 32));
    // The defaults written out (as the template does) say nothing wrong,
    // and neither does a relay with caps.
    assert_clean(&with_policy(
        baseline(),
        "relay_rate_limit_kbps = 0\nrelay_source_rate_limit_kbps = 50000",
    ));
    assert_clean(&with_policy(
        as_relay(),
        "relay_rate_limit_kbps = 100\nrelay_source_rate_limit_kbps = 1000",
    ));
}

#[test]
fn a_pair_cap_above_the_source_cap_is_a_warning() {
    let d = only(
        &with_policy(
            as_relay(),
            "relay_rate_limit_kbps = 80000\nrelay_source_rate_limit_kbps = 40000",
        ),
        "relay-pair-limit-above-source-limit",
        Warning,
        at(27, 25),
    );
    assert_eq!(
        hint(&d),
        "lower relay_rate_limit_kbps to 40000 or less, or raise relay_source_rate_limit_kbps to 80000 or more"
    );
    // Against the default source cap, too.
    let d = only(
        &with_policy(as_relay(), "relay_rate_limit_kbps = 60000"),
        "relay-pair-limit-above-source-limit",
        Warning,
        at(27, 25),
    );
    assert_contains(&d.message, "`relay_source_rate_limit_kbps = 50000`");
    // Equal, or an unlimited source cap: nothing to say.
    assert_clean(&with_policy(as_relay(), "relay_rate_limit_kbps = 50000"));
    assert_clean(&with_policy(
        as_relay(),
        "relay_rate_limit_kbps = 60000\nrelay_source_rate_limit_kbps = 0",
    ));
}

#[test]
fn the_template_writes_act_as_relay_off_and_the_source_cap() {
    let text = template(&template_params(None));
    assert_contains(&text, "\nact_as_relay = false\n");
    assert_contains(&text, "\nrelay_source_rate_limit_kbps = 50000\n");
    let c = parse(&text).config.expect("the template is valid");
    assert!(!c.node.act_as_relay);
    // Flipping the one line makes a relay, without new findings.
    let relay = text.replace("act_as_relay = false", "act_as_relay = true");
    let p = parse(&relay);
    assert_eq!(codes(&p), ["no-allowed-peers"], "{}", dump(&p));
    assert!(p.config.expect("valid").node.act_as_relay);
}
