use super::*;

/// How `vine counters` made its rows when the counters were a
/// `serde_json::Value`: every key but `relay_pairs`, nested objects as
/// `outer.inner`, in the Value's (alphabetical) key order.
fn rows_from_value(c: &CountersInfo) -> Vec<(String, String)> {
    fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flatten(&key, v, out);
                }
            }
            other => out.push((prefix.to_owned(), other.to_string())),
        }
    }
    let mut value = serde_json::to_value(c).expect("counters encode");
    value
        .as_object_mut()
        .expect("an object")
        .remove("relay_pairs");
    let mut rows = Vec::new();
    flatten("", &value, &mut rows);
    rows
}

#[test]
fn counter_rows_are_those_of_the_json_document() {
    let peer = vine_core::Identity::from_seed([7; 32])
        .peer_id()
        .to_string();
    let busy: CountersInfo = serde_json::from_value(serde_json::json!({
        "packets_sent": 1, "packets_received": 2, "bytes_sent": 3,
        "bytes_received": 4, "route_misses": 5, "session_failures": 6,
        "fallback_transitions": 7, "path_changes": 8, "relay_usage": 9,
        "relayed_for_others": 10,
        "relay_pairs": [{"source": peer, "destination": peer, "frames": 11,
            "bytes": 12, "rate_limited": 13, "refused": 14}],
        "membership_rejections": {"wrong_network": 15, "not_allowlisted": 16},
        "drops": {"unknown_route": 17, "malformed": 18, "packet_too_big": 19},
        "inline_drops": {"unknown_type": 20, "bad_size": 21},
        "queue_drops": {"handshake.full": 22},
        "queue_peak_bytes": {"control": 23, "handshake": 24},
    }))
    .expect("decodes");
    for c in [CountersInfo::default(), busy] {
        assert_eq!(counter_rows(&c), rows_from_value(&c));
    }
}
