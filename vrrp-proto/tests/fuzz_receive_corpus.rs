//! Replays fuzz/corpus/vrrp_receive/* through the fuzz target's body (`instances::fuzz_receive`): no
//! panic, and no rejected advert changes a state. The corpus includes valid adverts of both
//! instances, so the accepting path runs too (checked here on the first seed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn receive_corpus_replays() {
    let corpus = testkit::fuzz_corpus("vrrp_receive");
    assert!(corpus.len() >= 6);
    for (path, data) in &corpus {
        let r = std::panic::catch_unwind(|| vrrp_proto::instances::fuzz_receive(data));
        assert!(r.is_ok(), "{}", path.display());
    }
}

#[test]
fn a_valid_seed_is_accepted_and_a_wrong_ttl_one_rejected() {
    use std::net::IpAddr;
    use std::time::Instant;
    use vrrp_proto::{Config, Instances, Router, RxError, Version};
    let corpus = testkit::fuzz_corpus("vrrp_receive");
    let get = |name: &str| {
        corpus
            .iter()
            .find(|(p, _)| p.ends_with(name))
            .map(|(_, d)| d.clone())
            .unwrap()
    };
    let mut set = Instances::new();
    let mut c = Config::new("eth0", 51, vec![IpAddr::from([192, 0, 2, 100])]);
    c.version = Version::V2;
    c.auth_pass = Some(b"pw".to_vec());
    set.add("A", Router::new(c, IpAddr::from([192, 0, 2, 1])).unwrap())
        .unwrap();
    let t = Instant::now();
    set.start(t);
    let src = IpAddr::from([192, 0, 2, 2]);
    let dst = IpAddr::from([224, 0, 0, 18]);
    let ok = get("v2_ttl255");
    assert_eq!(
        set.handle_packet(t, "eth0", src, dst, ok[0], &ok[1..]),
        Ok(0)
    );
    let bad = get("v2_ttl1");
    assert_eq!(
        set.handle_packet(t, "eth0", src, dst, bad[0], &bad[1..]),
        Err((Some(0), RxError::Ttl { actual: 1 }))
    );
}
