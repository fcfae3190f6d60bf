//! Reading `[policy]`, and the checks of what a node says about relaying
//! for others: `[node] act_as_relay` against the relay caps of `[policy]`.

use super::document::{Ctx, Section};
use super::model::{LOW_RELAY_RATE_LIMIT_KBPS, MAX_RELAY_RATE_LIMIT_KBPS, NodeSection, Policy};

pub(super) fn read_policy(ctx: &mut Ctx<'_>, s: &Section<'_, '_>) -> Option<Policy> {
    let d = Policy::default();
    let strict_allowlist = s.boolean(ctx, "strict_allowlist", d.strict_allowlist);
    let allow_relay = s.boolean(ctx, "allow_relay", d.allow_relay);
    let allow_signaling_upgrade =
        s.boolean(ctx, "allow_signaling_upgrade", d.allow_signaling_upgrade);
    let relay_rate_limit_kbps = relay_cap(ctx, s, "relay_rate_limit_kbps", d.relay_rate_limit_kbps);
    let relay_source_rate_limit_kbps = relay_cap(
        ctx,
        s,
        "relay_source_rate_limit_kbps",
        d.relay_source_rate_limit_kbps,
    );
    Some(Policy {
        strict_allowlist: strict_allowlist?,
        allow_relay: allow_relay?,
        allow_signaling_upgrade: allow_signaling_upgrade?,
        relay_rate_limit_kbps: relay_rate_limit_kbps?,
        relay_source_rate_limit_kbps: relay_source_rate_limit_kbps?,
    })
}

/// One relay rate cap in kbit/s (0 = unlimited); `default` when absent.
fn relay_cap(ctx: &mut Ctx<'_>, s: &Section<'_, '_>, key: &str, default: u32) -> Option<u32> {
    match s.ranged(
        ctx,
        key,
        false,
        "10000",
        (0, i64::from(MAX_RELAY_RATE_LIMIT_KBPS)),
        " kbit/s; 0 means unlimited",
    ) {
        Some((n, span)) => {
            let low = i64::from(LOW_RELAY_RATE_LIMIT_KBPS);
            if n > 0 && n < low {
                ctx.warn(
                    &span,
                    "relay-rate-limit-low",
                    format!("`{key} = {n}` leaves relayed sessions too little room for their handshakes and probes"),
                    format!("use {low} or more (kbit/s), or 0 for no limit"),
                );
            }
            u32::try_from(n).ok()
        }
        None if s.get(key).is_none() => Some(default),
        None => None,
    }
}

/// Relay caps on a node that does not relay do nothing: most likely the
/// operator meant this node to be a relay and forgot to opt it in. A
/// per-pair cap above the per-source one never applies.
pub(super) fn check_relaying(ctx: &mut Ctx<'_>, node: &NodeSection, policy: &Policy) {
    let d = Policy::default();
    let caps = [
        (
            "relay_rate_limit_kbps",
            policy.relay_rate_limit_kbps,
            d.relay_rate_limit_kbps,
        ),
        (
            "relay_source_rate_limit_kbps",
            policy.relay_source_rate_limit_kbps,
            d.relay_source_rate_limit_kbps,
        ),
    ];
    if !node.act_as_relay {
        for (key, value, default) in caps {
            let span = ctx.spans.get(&format!("policy.{key}")).cloned();
            if let (Some(span), true) = (span, value != default) {
                ctx.warn(
                    &span,
                    "relay-limit-without-relaying",
                    format!("`{key} = {value}` has no effect: this node does not relay for others ([node] act_as_relay = false)"),
                    format!("to make this node a relay, set `act_as_relay = true` in [node]; on a node that only uses relays, remove `{key}`"),
                );
            }
        }
        return;
    }
    let (pair, source) = (
        policy.relay_rate_limit_kbps,
        policy.relay_source_rate_limit_kbps,
    );
    if source > 0 && pair > source {
        let span = ctx
            .spans
            .get("policy.relay_rate_limit_kbps")
            .or_else(|| ctx.spans.get("policy.relay_source_rate_limit_kbps"))
            .cloned();
        if let Some(span) = span {
            ctx.warn(
                &span,
                "relay-pair-limit-above-source-limit",
                format!("`relay_rate_limit_kbps = {pair}` (per pair) is above `relay_source_rate_limit_kbps = {source}` (per source, all its destinations together), so the per-pair cap never applies"),
                format!("lower relay_rate_limit_kbps to {source} or less, or raise relay_source_rate_limit_kbps to {pair} or more"),
            );
        }
    }
}
