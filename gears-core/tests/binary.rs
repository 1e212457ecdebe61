//! Binary-safe records on the in-memory cluster: keys, values, fields and members with
//! invalid UTF-8 and NUL bytes come back from 3 shards byte for byte, through the readers,
//! the codec (`collect`, `repartition`, `count_by`) and replies.

use std::collections::BTreeMap;

use gears_core::host::StreamEntry;
use gears_core::prelude::*;
use gears_core::testing::MemoryCluster;

const RAW: &[u8] = b"\xff\xfe";
const NUL: &[u8] = b"a\0b";

/// `bin:<tag><suffix>`: keys with bytes that are not UTF-8, on every shard.
fn key(i: usize, suffix: &[u8]) -> RedisBytes {
    [format!("bin:{i}:").as_bytes(), suffix].concat().into()
}

/// Writes 5 keys of each type (string, hash, list, set, zset, stream) and returns the
/// values each should read as.
fn load(cluster: &MemoryCluster) -> BTreeMap<RedisBytes, KeyValue> {
    let mut want = BTreeMap::new();
    for i in 0..5 {
        let (k, v) = (key(i * 6, RAW), RedisBytes::from([NUL, RAW].concat()));
        cluster.set(&k, &v);
        want.insert(k, KeyValue::String(v));
        let k = key(i * 6 + 1, NUL);
        cluster.hset(&k, &[(RAW, NUL), (NUL, RAW)]);
        let hash = BTreeMap::from([(RAW.into(), NUL.into()), (NUL.into(), RAW.into())]);
        want.insert(k, KeyValue::Hash(hash));
        let k = key(i * 6 + 2, RAW);
        cluster.owner(&k).rpush(&k, &[RAW, NUL, RAW]);
        want.insert(k, KeyValue::List(vec![RAW.into(), NUL.into(), RAW.into()]));
        let k = key(i * 6 + 3, NUL);
        cluster.owner(&k).sadd(&k, &[RAW, NUL]);
        let mut members: Vec<RedisBytes> = vec![RAW.into(), NUL.into()];
        members.sort();
        want.insert(k, KeyValue::Set(members));
        let k = key(i * 6 + 4, RAW);
        cluster.owner(&k).zadd(&k, 1.5, NUL);
        want.insert(k, KeyValue::ZSet(vec![(NUL.into(), 1.5)]));
        let k = key(i * 6 + 5, NUL);
        let id = cluster.xadd(&k, &[(NUL, RAW)]);
        let fields = vec![(NUL.into(), RAW.into())];
        want.insert(k, KeyValue::Stream(vec![StreamEntry { id, fields }]));
    }
    want
}

#[test]
fn three_shards_return_binary_keys_and_values_exactly() {
    let cluster = MemoryCluster::new(3);
    let want = load(&cluster);
    let owners: std::collections::BTreeSet<_> = want
        .keys()
        .map(|k| cluster.topology().owner_of_key(k))
        .collect();
    assert_eq!(owners.len(), 3, "the keys are spread over every shard");

    // KeysReader: every record's key and value, collected from the shards to the initiator.
    let out = cluster.run(GearsBuilder::new(KeysReader::new("bin:*")).collect());
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let got: BTreeMap<RedisBytes, KeyValue> = out
        .results
        .into_iter()
        .map(|r| (r.key, r.value.expect("a value")))
        .collect();
    assert_eq!(got, want);

    // KeysOnlyReader: the names, sorted across shards (a global step).
    let out = cluster.run(GearsBuilder::new(KeysOnlyReader::new("bin:*")).sort());
    let names: Vec<RedisBytes> = want.keys().cloned().collect();
    assert_eq!(out.results, names);

    // Binary values as partition and grouping keys cross shards exactly.
    let out = cluster.run(
        GearsBuilder::new(KeysReader::new("bin:*"))
            .filter(|r| r.key_type == KeyType::String)
            .map(|r| r.string_bytes().cloned().unwrap_or_default())
            .repartition(|v| v.clone())
            .count_by(|v| v.clone()),
    );
    assert_eq!(out.results, [(RedisBytes::from([NUL, RAW].concat()), 5)]);
}

#[test]
fn views_and_replies_of_binary_records() {
    let cluster = MemoryCluster::new(3);
    let k = key(0, RAW);
    cluster.hset(&k, &[("name", "ann"), ("raw", "x")]);
    cluster.owner(&k).hset(&k, &[(b"raw".as_slice(), RAW)]);
    let out = cluster.run(GearsBuilder::new(KeysReader::new("bin:*")));
    let record = &out.results[0];
    assert_eq!(record.key, k);
    assert_eq!(record.key_str(), None, "not UTF-8: no string view");
    assert_eq!(record.field("name"), Some("ann"));
    assert_eq!(record.field("raw"), None);
    assert_eq!(record.field_bytes(b"raw").map(|v| v.as_bytes()), Some(RAW));
    // The reply carries the exact bytes of the key and the fields.
    let Value::Array(reply) = record.clone().into_value() else {
        panic!("an array");
    };
    assert_eq!(reply[1], Value::Bulk(k.into_vec()));
    let Value::Array(fields) = &reply[5] else {
        panic!("the fields");
    };
    assert!(fields.contains(&Value::Bulk(RAW.to_vec())), "{fields:?}");
}
