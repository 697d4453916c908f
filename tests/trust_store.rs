//! Identity files, the trust store, and persistence across restarts.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::*;
use octolink::sim::LinkConfig;
use octolink::{Endpoint, EndpointConfig, Identity, NodeAssociate, PublicKey, Role, TrustStore};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("octolink-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn node_id_is_the_sha256_of_the_public_key_der_in_hex() {
    for name in ["a", "b", "big"] {
        let expected = fixture(&format!("node_{name}.id"));
        assert_eq!(
            identity(name).id().to_string(),
            expected.trim(),
            "computed by openssl"
        );
        let public = PublicKey::from_pem(&fixture(&format!("node_{name}.pub.pem"))).unwrap();
        assert_eq!(public.id(), identity(name).id());
    }
}

#[test]
fn private_key_round_trips_through_a_0600_pem_file() {
    let dir = temp_dir("key");
    let path = dir.join("node.key");
    let id = identity("a");
    id.save(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(Identity::load(&path).unwrap().id(), id.id());
    assert!(Identity::load(&dir.join("missing.key")).is_err());
    std::fs::write(dir.join("junk.key"), "not a key").unwrap();
    assert!(Identity::load(&dir.join("junk.key")).is_err());
}

#[test]
fn trust_store_round_trips_every_field_atomically() {
    let dir = temp_dir("store");
    let path = dir.join("associates.json");
    let mut store = TrustStore::new();
    let mut a = NodeAssociate::new(identity("b").public().clone(), "arm", Role::Agent)
        .with_address("127.0.0.1:4000".parse().unwrap());
    a.note_address("[::1]:4001".parse().unwrap(), true, Some(5));
    a.first_attempt_ms = Some(1);
    a.first_success_ms = Some(2);
    a.last_success_ms = Some(3);
    a.last_failure_ms = Some(4);
    store.insert(a).unwrap();
    store
        .insert(NodeAssociate::new(
            identity("c").public().clone(),
            "tablet",
            Role::Remote,
        ))
        .unwrap();
    store.save(&path).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    assert_eq!(TrustStore::load(&path).unwrap(), store);
    assert!(TrustStore::load(&dir.join("none.json")).unwrap().is_empty());
    std::fs::write(&path, "{").unwrap();
    assert!(TrustStore::load(&path).is_err());
}

#[test]
fn an_associate_whose_id_does_not_match_its_key_is_refused() {
    let mut a = NodeAssociate::new(identity("b").public().clone(), "x", Role::Agent);
    a.id = identity("c").id();
    assert!(TrustStore::new().insert(a).is_err());
}

#[test]
fn reloading_the_store_restores_every_peer_and_its_history() {
    let mut sim = pair(1, LinkConfig::default(), EndpointConfig::default());
    establish(&mut sim, Duration::from_secs(5)).unwrap();
    let b = id(&sim, 1);
    let dir = temp_dir("reload");
    let path = dir.join("associates.json");
    sim.nodes[0].endpoint.trust_store().save(&path).unwrap();

    let loaded = TrustStore::load(&path).unwrap();
    let assoc = loaded.get(&b).expect("peer persisted");
    assert!(assoc.first_success_ms.is_some() && assoc.last_success_ms.is_some());
    assert!(assoc.first_attempt_ms.is_some());
    assert_eq!(assoc.best_address(), Some(sim.nodes[1].addr));
    assert_eq!(&loaded, sim.nodes[0].endpoint.trust_store());

    // A new endpoint built from the file knows the peer: connect works with
    // no re-pairing.
    let mut ep = Endpoint::new(
        EndpointConfig::default(),
        identity("a"),
        loaded,
        [1; 32],
        Instant::now(),
        0,
    )
    .unwrap();
    ep.connect(Instant::now(), &b)
        .expect("peer restored from the store");
    let mut buf = [0u8; 1452];
    let t = ep
        .poll_transmit(Instant::now(), &mut buf)
        .expect("a SYN goes out");
    assert_eq!(t.destination, sim.nodes[1].addr);
}
