//! Binary-safe records inside a real redis-server: key names, values, hash fields, list, set
//! and sorted-set members and stream fields with invalid UTF-8 (`\xff\xfe`) and NUL (`a\0b`)
//! come back from flows byte for byte (`KeysReader`, `KeysOnlyReader`), and keyspace
//! registrations on binary key names see them unchanged.

use std::collections::BTreeMap;
use std::time::Duration;

use gears_testkit::{eventually, stream_entries, Server};
use redis::Value;

const RAW: &[u8] = b"\xff\xfe";
const NUL: &[u8] = b"a\0b";

/// `<prefix><kind>:<suffix>`.
fn key(prefix: &str, kind: &str, suffix: &[u8]) -> Vec<u8> {
    [prefix.as_bytes(), kind.as_bytes(), b":", suffix].concat()
}

fn bulk(bytes: &[u8]) -> Value {
    Value::BulkString(bytes.to_vec())
}

/// Writes one key of each type under `bin:` and returns each key's expected `[type, value]`
/// as `KeysReader` replies them.
fn load(con: &mut redis::Connection) -> BTreeMap<Vec<u8>, (Value, Value)> {
    let value = [NUL, RAW].concat();
    let string = key("bin:", "string", RAW);
    let hash = key("bin:", "hash", NUL);
    let list = key("bin:", "list", RAW);
    let set = key("bin:", "set", NUL);
    let zset = key("bin:", "zset", RAW);
    let stream = key("bin:", "stream", NUL);
    let _: () = redis::pipe()
        .cmd("SET")
        .arg(&string)
        .arg(&value)
        .cmd("HSET")
        .arg(&hash)
        .arg(RAW)
        .arg(NUL)
        .arg(NUL)
        .arg(RAW)
        .cmd("RPUSH")
        .arg(&list)
        .arg(RAW)
        .arg(NUL)
        .arg(RAW)
        .cmd("SADD")
        .arg(&set)
        .arg(RAW)
        .arg(NUL)
        .cmd("ZADD")
        .arg(&zset)
        .arg(1.5)
        .arg(NUL)
        .query(con)
        .expect("load");
    let id: Vec<u8> = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg(NUL)
        .arg(RAW)
        .query(con)
        .expect("XADD");
    let typed = |t: &str, v: Value| (bulk(t.as_bytes()), v);
    let array = |items: &[&[u8]]| Value::Array(items.iter().map(|b| bulk(b)).collect());
    // Hash fields and set members sorted by their bytes (`a\0b` < `\xff\xfe`); a stream entry
    // is `[id, [[field, value], ...]]`.
    BTreeMap::from([
        (string, typed("string", bulk(&value))),
        (hash, typed("hash", array(&[NUL, RAW, RAW, NUL]))),
        (list, typed("list", array(&[RAW, NUL, RAW]))),
        (set, typed("set", array(&[NUL, RAW]))),
        (
            zset,
            typed("zset", Value::Array(vec![array(&[NUL, b"1.5"])])),
        ),
        (
            stream,
            typed(
                "stream",
                Value::Array(vec![Value::Array(vec![
                    bulk(&id),
                    Value::Array(vec![array(&[NUL, RAW])]),
                ])]),
            ),
        ),
    ])
}

/// `RG.RUN <flow> ARGS <args...>`: the results, after checking there are no errors.
fn rg_run(con: &mut redis::Connection, flow: &str, args: &[&str]) -> Vec<Value> {
    let (results, errors): (Vec<Value>, Vec<String>) = redis::cmd("RG.RUN")
        .arg(flow)
        .arg("ARGS")
        .arg(args)
        .query(con)
        .expect("RG.RUN");
    assert!(errors.is_empty(), "{flow}: {errors:?}");
    results
}

#[test]
fn flows_return_binary_keys_and_values_byte_for_byte() {
    let server = Server::start("gears_wordcount", &[]);
    let mut con = server.conn();
    let want = load(&mut con);

    // KeysReader: each record is `[key, <name>, type, <type>, value, <value>, event, nil]`.
    let mut got = BTreeMap::new();
    for record in rg_run(&mut con, "key_records", &["bin:*"]) {
        let Value::Array(parts) = record else {
            panic!("a record: {record:?}");
        };
        assert_eq!(parts.len(), 8, "{parts:?}");
        assert_eq!(
            (&parts[0], &parts[6], &parts[7]),
            (&bulk(b"key"), &bulk(b"event"), &Value::Nil)
        );
        let Value::BulkString(name) = &parts[1] else {
            panic!("a key name: {parts:?}");
        };
        got.insert(name.clone(), (parts[3].clone(), parts[5].clone()));
    }
    assert_eq!(got, want);

    // KeysOnlyReader: the names, sorted.
    let names: Vec<Value> = want.keys().map(|k| bulk(k)).collect();
    assert_eq!(rg_run(&mut con, "key_names", &["bin:*"]), names);

    // A flow that builds bytes from a record keeps them too.
    let line = [b"bin:string:".as_slice(), RAW, b" string ", NUL, RAW].concat();
    assert_eq!(
        rg_run(&mut con, "describe_keys", &["bin:string:*"]),
        [bulk(&line)]
    );

    // Command arguments are text: one that is not UTF-8 is refused, not altered.
    let refused = redis::cmd("RG.RUN")
        .arg("key_names")
        .arg("ARGS")
        .arg(RAW)
        .query::<Value>(&mut con)
        .expect_err("a non-UTF-8 argument");
    assert!(refused.to_string().contains("not UTF-8"), "{refused}");
}

fn list(con: &mut redis::Connection, key: &str) -> Vec<Vec<u8>> {
    redis::cmd("LRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .query(con)
        .expect("LRANGE")
}

#[test]
fn keyspace_registrations_see_binary_key_names_and_values_unchanged() {
    let server = Server::start("gears_triggers", &[]);
    let mut con = server.conn();
    // `copy_writes` (async_local): each key written under `bin:` is pushed to `copies:bin:*`.
    let id: String = redis::cmd("RG.REGISTER")
        .arg("copy_writes")
        .arg("ARGS")
        .arg("bin:*")
        .query(&mut con)
        .expect("RG.REGISTER");
    assert!(!id.is_empty());
    let written = [key("bin:", "s", RAW), key("bin:", "h", NUL)];
    let _: () = redis::pipe()
        .cmd("SET")
        .arg(&written[0])
        .arg(RAW)
        .cmd("HSET")
        .arg(&written[1])
        .arg(NUL)
        .arg(RAW)
        .query(&mut con)
        .expect("writes");
    eventually(Duration::from_secs(20), "both writes copied", || {
        list(&mut con, "copies:bin:*").len() == 2
    });
    assert_eq!(list(&mut con, "copies:bin:*"), written);

    // `snapshots` (async_local, value read at the write): the value's bytes are logged.
    let value = [RAW, NUL].concat();
    let _: () = redis::cmd("SET")
        .arg(key("snap:", "k", NUL))
        .arg(&value)
        .query(&mut con)
        .expect("SET");
    eventually(Duration::from_secs(20), "the value logged", || {
        !list(&mut con, "snap:log").is_empty()
    });
    assert_eq!(list(&mut con, "snap:log"), [value]);

    // `audit_trail` (sync, inside the write): the key name is appended to `audit` as it is.
    let user = key("user:", "x", RAW);
    let _: i64 = redis::cmd("HSET")
        .arg(&user)
        .arg("a")
        .arg("1")
        .query(&mut con)
        .expect("HSET");
    let entries = stream_entries(&mut con, "audit");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].1[0], (b"key".to_vec(), user));
}
