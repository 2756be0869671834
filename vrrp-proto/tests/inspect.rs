//! The `vrrp_decode` report (`vrrp_proto::inspect`) on the captured vectors, parsed back with serde_json.
//! The example in examples/examples/vrrp_decode.rs only feeds stdin lines to this code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::{Value, json};
use vrrp_proto::inspect::inspect_line;

fn report(line: &str) -> Value {
    serde_json::from_str(&inspect_line(line).unwrap().to_json()).unwrap()
}

#[test]
fn v2_pass() {
    let v = report(&common::data_lines("v2_pass.hex")[0]);
    assert_eq!(v["valid"], json!(true));
    assert_eq!(v["version"], json!(2));
    assert_eq!(v["vrid"], json!(10));
    assert_eq!(v["priority"], json!(150));
    assert_eq!(v["count"], json!(2));
    assert_eq!(v["addresses"], json!(["10.77.0.10", "10.77.0.11"]));
    assert_eq!(v["auth_type"], json!(1));
    assert_eq!(v["auth_data"], json!("7365637265743100"));
    assert_eq!(v["auth_text"], json!("secret1"));
    assert_eq!(v["adver_int"], json!(1));
    assert_eq!(v["checksum_valid_as"], json!(["message-only"]));
    assert!(v.get("max_adver_int").is_none() && v.get("errors").is_none());
}

#[test]
fn v3_ipv4_ipv6_unicast() {
    let v = report(&common::data_lines("v3_ipv4.hex")[0]);
    assert_eq!(
        (
            v["valid"].clone(),
            v["version"].clone(),
            v["max_adver_int"].clone()
        ),
        (json!(true), json!(3), json!(100))
    );
    assert_eq!(v["checksum_valid_as"], json!(["pseudo-header"]));
    assert!(v.get("auth_type").is_none() && v.get("adver_int").is_none());
    let v = report(&common::data_lines("v3_ipv6.hex")[0]);
    assert_eq!(v["addresses"], json!(["fe80::77:30", "fd00:77::30"]));
    assert_eq!(v["checksum_valid_as"], json!(["pseudo-header"]));
    assert_eq!(v["valid"], json!(true));
    let v = report(&common::data_lines("v3_unicast.hex")[0]);
    assert_eq!(
        (v["vrid"].clone(), v["dst"].clone()),
        (json!(40), json!("10.77.0.2"))
    );
    assert_eq!(v["checksum_valid_as"], json!(["pseudo-header"]));
}

#[test]
fn rfc9568_and_priority0() {
    for l in common::data_lines("rfc9568_message_only.hex") {
        let v = report(&l);
        assert_eq!(v["valid"], json!(true));
        assert_eq!(v["checksum_valid_as"], json!(["message-only"]));
    }
    for l in common::data_lines("priority0.hex") {
        let v = report(&l);
        assert_eq!(
            (v["valid"].clone(), v["priority"].clone()),
            (json!(true), json!(0))
        );
    }
}

#[test]
fn every_captured_line_is_valid() {
    let all = common::data_lines("capture.hex");
    assert!(all.len() >= 8);
    for l in all {
        assert_eq!(report(&l)["valid"], json!(true), "{l}");
    }
}

#[test]
fn errors_are_reported() {
    // Checksum broken.
    let v = report("10.77.0.1 224.0.0.18 31147801006461490a4d0014");
    assert_eq!(v["valid"], json!(false));
    assert_eq!(v["checksum_valid_as"], json!([]));
    assert!(v["errors"][0].as_str().unwrap().starts_with("checksum"));
    // Length against count: fields still shown.
    let v = report("10.77.0.1 224.0.0.18 31147802006461480a4d0014");
    assert_eq!(
        (v["valid"].clone(), v["count"].clone()),
        (json!(false), json!(2))
    );
    assert!(
        v["errors"][0].as_str().unwrap().starts_with("length"),
        "{v}"
    );
    // Version, count 0, truncated, garbage line.
    assert!(
        report("10.0.0.1 224.0.0.18 41147801006461480a4d0014")["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("version")
    );
    assert!(
        report("10.0.0.1 224.0.0.18 3114780000646148")["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("count")
    );
    assert!(
        report("10.0.0.1 224.0.0.18 3114")["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("truncated")
    );
    let v = report("not-an-ip 224.0.0.18 00");
    assert_eq!(v["valid"], json!(false));
    assert!(v["errors"][0].as_str().unwrap().contains("not-an-ip"));
    assert!(
        report("1.2.3.4 1.2.3.5 abc")["errors"][0]
            .as_str()
            .unwrap()
            .contains("hex")
    );
    assert!(
        report("1.2.3.4")["errors"][0]
            .as_str()
            .unwrap()
            .contains("fields")
    );
    assert!(inspect_line("# comment").is_none());
    assert!(inspect_line("   ").is_none());
}

/// An IPv6 message whose checksum is only the message-only sum is reported as such but not valid: RFC
/// 5798 / RFC 9568 §5.2.8 make the IPv6 pseudo-header mandatory.
#[test]
fn ipv6_message_only_checksum_is_invalid() {
    use vrrp_proto::wire::{Checksum, Packet, Repr};
    let line = &common::data_lines("v3_ipv6.hex")[0];
    let f: Vec<&str> = line.split_whitespace().collect();
    let bytes = hex::decode(f[2]).unwrap();
    let repr = Repr::from_packet(&Packet::parse_unverified(&bytes).unwrap());
    let message_only = repr.to_bytes(&Checksum::MessageOnly).unwrap();
    assert_ne!(message_only, bytes);
    let v = report(&format!("{} {} {}", f[0], f[1], hex::encode(&message_only)));
    assert_eq!(v["checksum_valid_as"], json!(["message-only"]));
    assert_eq!(v["valid"], json!(false));
    assert!(
        v["errors"][0]
            .as_str()
            .unwrap()
            .contains("IPv6 requires the pseudo-header"),
        "{v}"
    );
    // The captured one is valid, as the pseudo-header.
    let v = report(line);
    assert_eq!(v["valid"], json!(true));
    assert_eq!(v["checksum_valid_as"], json!(["pseudo-header"]));
}
