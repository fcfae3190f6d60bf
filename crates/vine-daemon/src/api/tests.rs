use super::*;

fn peer() -> PeerId {
    vine_core::Identity::from_seed([7; 32]).peer_id()
}

fn round_trip_request(body: RequestBody) {
    let line = encode_line(&Request::new(body.clone()));
    assert_eq!(line.last(), Some(&b'\n'));
    assert!(!line[..line.len() - 1].contains(&b'\n'), "one line");
    match decode_request(&line[..line.len() - 1]) {
        Decoded::Request(b) => assert_eq!(b, body),
        Decoded::Reject(e) => panic!("{body:?} rejected: {e}"),
    }
}

#[test]
fn every_request_round_trips() {
    for body in [
        RequestBody::Status,
        RequestBody::Peers,
        RequestBody::Routes,
        RequestBody::Sessions,
        RequestBody::Counters,
        RequestBody::Snapshot,
        RequestBody::Ping {
            address: Ipv4Addr::new(10, 42, 1, 1),
            count: 3,
        },
        RequestBody::Explain {
            peer: "beta".into(),
        },
        RequestBody::Reload,
        RequestBody::Shutdown,
    ] {
        round_trip_request(body);
    }
}

#[test]
fn documented_request_examples_decode() {
    let d =
        decode_request(br#"{"version":1,"body":{"type":"ping","address":"10.42.1.1","count":3}}"#);
    assert_eq!(
        d,
        Decoded::Request(RequestBody::Ping {
            address: Ipv4Addr::new(10, 42, 1, 1),
            count: 3
        })
    );
    let d = decode_request(br#"{"version":1,"body":{"type":"status"}}"#);
    assert_eq!(d, Decoded::Request(RequestBody::Status));
    let d = decode_request(br#"{"version":1,"body":{"type":"explain","peer":"beta"}}"#);
    assert_eq!(
        d,
        Decoded::Request(RequestBody::Explain {
            peer: "beta".into()
        })
    );
}

fn explanation() -> Explanation {
    Explanation {
        peer_id: peer(),
        name: Some("gamma".into()),
        prefix: Some("10.42.2.0/24".into()),
        relay_capable: false,
        enrolled: true,
        session_up: true,
        class: Some("relay".into()),
        via: Some("relay:relay".into()),
        why: "relay via relay:relay (rtt 40.0 ms): no better path works".into(),
        attempts: vec![AttemptInfo {
            path: "udp://198.51.100.7:40000".into(),
            class: "signaling_then_direct".into(),
            outcome: "no_answer".into(),
            reason_code: "filtered_by_nat".into(),
            reason: "filtered by NAT".into(),
            current: false,
            ago_ms: 28_420,
            since_ms: 28_420,
            first_ms: 29_950,
        }],
        relay_pairs: vec![RelayPairInfo {
            source: peer(),
            source_name: Some("gamma".into()),
            destination: peer(),
            destination_name: None,
            frames: 3,
            bytes: 300,
            rate_limited: 1,
            refused: 0,
        }],
    }
}

#[test]
fn explain_answers_have_the_documented_shape() {
    let v: serde_json::Value = serde_json::from_slice(&encode_line(&Response::ok(
        ResponseBody::Explain(explanation()),
    )))
    .expect("json");
    let data = &v["body"]["ok"]["data"];
    assert_eq!(v["body"]["ok"]["type"], "explain");
    assert_eq!(
        data["why"],
        "relay via relay:relay (rtt 40.0 ms): no better path works"
    );
    assert_eq!(data["attempts"][0]["outcome"], "no_answer");
    assert_eq!(data["attempts"][0]["reason_code"], "filtered_by_nat");
    assert_eq!(data["relay_pairs"][0]["rate_limited"], 1);
    // A daemon that predates relay_pairs still decodes.
    let mut old = data.clone();
    old.as_object_mut().expect("object").remove("relay_pairs");
    let back: Explanation = serde_json::from_value(old).expect("decodes");
    assert!(back.relay_pairs.is_empty());
    let e = Response::error(ErrorCode::UnknownPeer, "no peer matches");
    let v: serde_json::Value = serde_json::from_slice(&encode_line(&e)).expect("json");
    assert_eq!(v["body"]["error"]["code"], "unknown_peer");
}

fn round_trip_response(r: Response) {
    let line = encode_line(&r);
    let back: Response = serde_json::from_slice(&line).expect("decodes");
    assert_eq!(back, r);
}

#[test]
fn every_response_round_trips() {
    let status = Status {
        phase: Phase::Running,
        pid: 42,
        started_at: 1_700_000_000,
        config_path: "/etc/libvine/vine.toml".into(),
        peer_id: peer(),
        network_id: "home-net".into(),
        prefix: "10.42.0.0/24".into(),
        listen_address: "0.0.0.0:4100".into(),
        tun_name: "vine0".into(),
        peers: 2,
        enrolled_peers: 1,
    };
    let peer_info = PeerInfo {
        peer_id: peer(),
        name: Some("beta".into()),
        prefix: Some("10.42.1.0/24".into()),
        relay_capable: true,
        enrolled: true,
        session_up: true,
        class: Some("direct".into()),
        via: Some("udp://192.0.2.2:4100".into()),
    };
    for body in [
        ResponseBody::Status(status),
        ResponseBody::Peers(vec![peer_info]),
        ResponseBody::Routes(vec![RouteInfo {
            prefix: "10.42.1.0/24".into(),
            peer: peer(),
            peer_name: None,
            state: "installed".into(),
        }]),
        ResponseBody::Sessions(vec![SessionInfo {
            peer_id: peer(),
            name: None,
            session_up: false,
            class: None,
            via: None,
            paths: vec![PathInfo {
                via: "udp://192.0.2.2:4100".into(),
                class: "direct".into(),
                alive: false,
                rtt_us: None,
                misses: 3,
            }],
        }]),
        ResponseBody::Counters(CountersInfo {
            packets_sent: 1,
            ..CountersInfo::default()
        }),
        ResponseBody::Snapshot(serde_json::json!({"running": true})),
        ResponseBody::Ping(PingResult {
            address: Ipv4Addr::new(10, 42, 1, 1),
            count: 1,
            prefix: None,
            peer: None,
            peer_name: None,
            route_state: None,
            session_up: false,
            class: None,
            via: None,
            rtt_us: None,
            probes: vec![crate::api::ProbeRtt {
                seq: 1,
                rtt_us: Some(420),
                via: Some("udp://192.0.2.2:4100".into()),
                class: Some("direct".into()),
            }],
        }),
        ResponseBody::Reload(ReloadOutcome::Applied),
        ResponseBody::Reload(ReloadOutcome::Rejected {
            diagnostics: vec!["bad".into()],
        }),
        ResponseBody::Reload(ReloadOutcome::RestartRequired {
            sections: vec!["tun".into()],
        }),
        ResponseBody::Explain(explanation()),
        ResponseBody::ShuttingDown,
    ] {
        round_trip_response(Response::ok(body));
    }
    round_trip_response(Response::error(ErrorCode::UnknownPeer, "who?"));
    round_trip_response(Response::error(ErrorCode::Internal, "boom"));
}

#[test]
fn response_wire_shape_matches_the_docs() {
    let v: serde_json::Value =
        serde_json::from_slice(&encode_line(&Response::ok(ResponseBody::ShuttingDown)))
            .expect("json");
    assert_eq!(
        v,
        serde_json::json!({"version":1,"body":{"ok":{"type":"shutting_down"}}})
    );
    let v: serde_json::Value = serde_json::from_slice(&encode_line(&Response::error(
        ErrorCode::UnsupportedVersion,
        "x",
    )))
    .expect("json");
    assert_eq!(
        v,
        serde_json::json!({"version":1,"body":{"error":{"code":"unsupported_version","message":"x"}}})
    );
}

fn rejected(line: &[u8]) -> ErrorBody {
    match decode_request(line) {
        Decoded::Reject(e) => e,
        Decoded::Request(r) => panic!("{:?} accepted as {r:?}", String::from_utf8_lossy(line)),
    }
}

#[test]
fn unknown_version_is_a_typed_error() {
    let e = rejected(br#"{"version":7,"body":{"type":"status"}}"#);
    assert_eq!(e.code, ErrorCode::UnsupportedVersion);
    assert!(e.message.contains("version 7"), "{}", e.message);
    // Even a body this build does not know is answered by version first.
    let e = rejected(br#"{"version":2,"body":{"type":"teleport"}}"#);
    assert_eq!(e.code, ErrorCode::UnsupportedVersion);
}

#[test]
fn malformed_lines_are_rejected_not_panicked_on() {
    for line in [
        &b""[..],
        b"not json",
        b"{",
        b"[]",
        b"null",
        b"{\"body\":{\"type\":\"status\"}}",
        b"{\"version\":\"1\",\"body\":{\"type\":\"status\"}}",
        b"{\"version\":-1}",
        b"{\"version\":1}",
        b"{\"version\":1,\"body\":{\"type\":\"teleport\"}}",
        b"{\"version\":1,\"body\":{\"type\":\"ping\",\"address\":\"10.0.0.300\",\"count\":1}}",
        b"{\"version\":1,\"body\":{\"type\":\"ping\",\"address\":\"10.0.0.1\"}}",
        b"{\"version\":1,\"body\":{\"type\":\"ping\",\"address\":\"10.0.0.1\",\"count\":-3}}",
        b"\xff\xfe\x00",
    ] {
        let e = rejected(line);
        assert_eq!(
            e.code,
            ErrorCode::MalformedRequest,
            "{:?}",
            String::from_utf8_lossy(line)
        );
        assert!(!e.message.is_empty());
    }
}

#[test]
fn unknown_error_codes_from_newer_daemons_decode() {
    let r: Response = serde_json::from_str(
        r#"{"version":1,"body":{"error":{"code":"quota_exceeded","message":"m"}}}"#,
    )
    .expect("decodes");
    assert_eq!(r.body.expect_err("error").code, ErrorCode::Unknown);
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut state = 0x1234_5678_u32;
    for len in 0..300 {
        let line: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let alphabet = b"{}\":,[]01versionbodytype \\";
                alphabet[state as usize % alphabet.len()]
            })
            .collect();
        let _ = decode_request(&line);
    }
}

/// The node's counters with every field set, nested maps and relay pairs
/// included.
fn busy_counters() -> vine_core::node::Counters {
    use vine_core::node::{Counters, DropReason, RejectReason, RelayPairCounters};
    let other = vine_core::Identity::from_seed([8; 32]).peer_id();
    Counters {
        packets_sent: 1,
        packets_received: 2,
        bytes_sent: 3,
        bytes_received: 4,
        route_misses: 5,
        session_failures: 6,
        fallback_transitions: 7,
        path_changes: 8,
        relay_usage: 9,
        relayed_for_others: 10,
        relay_pairs: vec![RelayPairCounters {
            source: peer(),
            destination: other,
            frames: 11,
            bytes: 12,
            rate_limited: 13,
            refused: 14,
        }],
        membership_rejections: [
            (RejectReason::WrongNetwork, 15),
            (RejectReason::NotAllowlisted, 16),
        ]
        .into_iter()
        .collect(),
        drops: [
            (DropReason::UnknownRoute, 17),
            (DropReason::Malformed, 18),
            (DropReason::PacketTooBig, 19),
        ]
        .into_iter()
        .collect(),
        handshake_dh_computed: 20,
        handshake_rate_limited: 21,
        handshake_mac2_missing: 22,
        cookie_replies_sent: 23,
        cookie_replies_received: 24,
        bad_cookie_replies: 25,
    }
}

#[test]
fn counters_keep_the_json_of_the_node_type_byte_for_byte() {
    /// The answer as the daemon sent it before the api had a type for
    /// counters: the node's type turned into a `serde_json::Value`.
    #[derive(Serialize)]
    #[serde(tag = "type", content = "data", rename_all = "snake_case")]
    enum Before {
        Counters(serde_json::Value),
    }
    for counters in [vine_core::node::Counters::default(), busy_counters()] {
        let value = serde_json::to_value(&counters).expect("json");
        let typed = CountersInfo::from_node(&counters).expect("decodes");
        assert_eq!(
            serde_json::to_value(&typed).expect("json"),
            value,
            "no field lost"
        );
        let before = Before::Counters(value);
        let now = ResponseBody::Counters(typed);
        assert_eq!(
            serde_json::to_string(&now).expect("json"),
            serde_json::to_string(&before).expect("json"),
            "the wire"
        );
        assert_eq!(
            serde_json::to_string_pretty(&now).expect("json"),
            serde_json::to_string_pretty(&before).expect("json"),
            "`vine counters --format json`"
        );
    }
}
