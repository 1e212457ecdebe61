//! Binary records across a real cluster: keys and values with invalid UTF-8 and NUL bytes,
//! read on every master and gathered at the one that started the run (records cross shards
//! in codec batches), come back byte for byte, from `RG.RUN` and from `RG.GETRESULTS`.

use std::collections::{BTreeMap, BTreeSet};

use gears_testkit::Cluster;
use redis::Value;

/// `RG.RUN <flow> ARGS bin:*`: the results, after checking there are no errors.
fn results(con: &mut redis::Connection, flow: &str) -> Vec<Value> {
    let (results, errors): (Vec<Value>, Vec<String>) = redis::cmd("RG.RUN")
        .arg(flow)
        .arg("ARGS")
        .arg("bin:*")
        .query(con)
        .expect("RG.RUN");
    assert!(errors.is_empty(), "{flow}: {errors:?}");
    results
}

/// The `(key, value)` of each `key_records` record of a string key.
fn strings(records: Vec<Value>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    records
        .into_iter()
        .map(|r| match r {
            Value::Array(parts) => match (&parts[1], &parts[5]) {
                (Value::BulkString(k), Value::BulkString(v)) => (k.clone(), v.clone()),
                other => panic!("a string record: {other:?}"),
            },
            other => panic!("a record: {other:?}"),
        })
        .collect()
}

pub(crate) fn binary_records_cross_shards_exactly(cluster: &Cluster) {
    let table = cluster.slots();
    let mut want = BTreeMap::new();
    let mut owners = BTreeSet::new();
    for i in 0..30u8 {
        let key = [format!("bin:{i}:").as_bytes(), b"\xff\xfe\0"].concat();
        let value = [b"a\0b", &[i, 0xff][..]].concat();
        let owner = cluster.master_in(&table, gears::slot::key_slot(&key));
        owners.insert(owner);
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(&value)
            .query(&mut cluster.nodes[owner].conn())
            .expect("SET");
        want.insert(key, value);
    }
    assert_eq!(owners.len(), 3, "the keys are spread over every master");
    let names: Vec<Value> = want.keys().map(|k| Value::BulkString(k.clone())).collect();
    for node in &cluster.nodes {
        let mut con = node.conn();
        assert_eq!(strings(results(&mut con, "key_records")), want);
        assert_eq!(results(&mut con, "key_names"), names);
    }
    // Kept results, fetched later, are the same bytes.
    let mut con = cluster.nodes[1].conn();
    let id: String = redis::cmd("RG.RUN")
        .arg("key_names")
        .arg("UNBLOCKING")
        .arg("ARGS")
        .arg("bin:*")
        .query(&mut con)
        .expect("RG.RUN UNBLOCKING");
    let (kept, errors): (Vec<Value>, Vec<String>) = redis::cmd("RG.GETRESULTSBLOCKING")
        .arg(&id)
        .query(&mut con)
        .expect("RG.GETRESULTSBLOCKING");
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(kept, names);
    let _: () = redis::cmd("RG.DROPEXECUTION")
        .arg(&id)
        .query(&mut con)
        .expect("RG.DROPEXECUTION");
    // The later checks compare the cluster with a standalone server: the keys go.
    for key in want.keys() {
        let owner = cluster.master_in(&table, gears::slot::key_slot(key));
        let _: i64 = redis::cmd("DEL")
            .arg(key)
            .query(&mut cluster.nodes[owner].conn())
            .expect("DEL");
    }
}
