//! `[policy] relay_rate_limit_kbps`: the relay-side rate cap per pair.

use super::*;

/// The baseline of a relay (`act_as_relay = true`, line 5) with `[policy]`
/// holding only `line` (line 27 of the text).
fn with_policy_line(line: &str) -> String {
    format!("{}\n[policy]\n{line}\n", as_relay())
}

#[test]
fn relay_rate_limit_defaults_to_unlimited() {
    assert_eq!(assert_clean(&baseline()).policy.relay_rate_limit_kbps, 0);
    assert_eq!(
        assert_clean(&with_policy_line("relay_rate_limit_kbps = 0"))
            .policy
            .relay_rate_limit_kbps,
        0
    );
}

#[test]
fn relay_rate_limit_is_read() {
    for (text, kbps) in [
        ("relay_rate_limit_kbps = 64", 64),
        ("relay_rate_limit_kbps = 10_000", 10_000),
        (
            "relay_rate_limit_kbps = 10000000\nrelay_source_rate_limit_kbps = 0",
            10_000_000,
        ),
    ] {
        let c = assert_clean(&with_policy_line(text));
        assert_eq!(c.policy.relay_rate_limit_kbps, kbps, "{text}");
        assert!(
            c.policy.allow_relay,
            "other policy keys keep their defaults"
        );
    }
}

#[test]
fn out_of_range_relay_rate_limit() {
    for n in ["-1", "10000001", "4294967296"] {
        let d = only(
            &with_policy_line(&format!("relay_rate_limit_kbps = {n}")),
            "out-of-range",
            Error,
            at(27, 25),
        );
        assert_eq!(
            d.message,
            format!("`relay_rate_limit_kbps = {n}` in [policy] is out of range")
        );
        assert_eq!(
            hint(&d),
            "use a value from 0 to 10000000 kbit/s; 0 means unlimited"
        );
    }
}

#[test]
fn wrong_type_relay_rate_limit() {
    let d = only(
        &with_policy_line("relay_rate_limit_kbps = \"512\""),
        "wrong-type",
        Error,
        at(27, 25),
    );
    assert_eq!(
        d.message,
        "`relay_rate_limit_kbps` in [policy] must be an integer, found a string"
    );
    assert_eq!(hint(&d), "remove the quotes: `relay_rate_limit_kbps = 512`");

    let d = only(
        &with_policy_line("relay_rate_limit_kbps = 1.5"),
        "wrong-type",
        Error,
        at(27, 25),
    );
    assert_contains(&d.message, "must be an integer, found a float");
}

#[test]
fn very_low_relay_rate_limit_is_a_warning() {
    let d = only(
        &with_policy_line("relay_rate_limit_kbps = 8"),
        "relay-rate-limit-low",
        Warning,
        at(27, 25),
    );
    assert_eq!(
        d.message,
        "`relay_rate_limit_kbps = 8` leaves relayed sessions too little room for their handshakes and probes"
    );
    assert_eq!(hint(&d), "use 64 or more (kbit/s), or 0 for no limit");
    assert_eq!(
        parse(&with_policy_line("relay_rate_limit_kbps = 8"))
            .config
            .expect("warnings keep the config")
            .policy
            .relay_rate_limit_kbps,
        8
    );
}

#[test]
fn relay_rate_limit_typo_gets_a_suggestion() {
    let d = only(
        &with_policy_line("relay_rate_limit_kpbs = 100"),
        "unknown-key",
        Error,
        at(27, 1),
    );
    assert_contains(hint(&d), "relay_rate_limit_kbps");
}

#[test]
fn template_documents_the_relay_rate_limit() {
    let text = template(&template_params(None));
    assert_contains(&text, "relay_rate_limit_kbps = 0");
    assert_contains(&text, "0 = unlimited");
}
