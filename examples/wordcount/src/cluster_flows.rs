//! More flows over the same sample data, used to check that a Redis Cluster answers exactly
//! what one server does (`gears-module/tests/cluster`): `distinct`, `aggregate`, a global
//! `sort`, and `repartition` feeding steps that write keys on the shard owning them.

use gears::context;
use gears::prelude::*;

fn city(r: &KeyRecord) -> String {
    r.field("city").unwrap_or("unknown").to_string()
}

/// The `age` field as a number (0 when missing or not one).
fn age(r: &KeyRecord) -> u64 {
    r.field("age")
        .and_then(|a| a.parse::<u64>().ok())
        .unwrap_or(0)
}

/// The cities of `user:*` hashes, each once, sorted (`distinct`).
#[gears::register]
pub fn distinct_cities() -> GearsBuilder<String> {
    GearsBuilder::new(KeysReader::new("user:*"))
        .map(|r| city(&r))
        .distinct()
        .sort()
}

/// The sum of the `age` fields of `user:*` hashes (`aggregate`: local sums, then combined).
#[gears::register]
pub fn total_age() -> GearsBuilder<u64> {
    GearsBuilder::new(KeysReader::new("user:*"))
        .map(|r| age(&r))
        .aggregate(0u64, |acc, age| *acc += age, |acc, part| *acc += part)
}

/// Every user's age, sorted (a global `sort`).
#[gears::register]
pub fn sorted_ages() -> GearsBuilder<u64> {
    GearsBuilder::new(KeysReader::new("user:*"))
        .map(|r| age(&r))
        .sort()
}

/// Users counted per city (`count_by`), sorted.
#[gears::register]
pub fn count_by_city() -> GearsBuilder<(String, u64)> {
    GearsBuilder::new(KeysReader::new("user:*"))
        .count_by(city)
        .sort()
}

/// Moves each user to the shard owning its city's slot (`repartition`), where a step adds
/// the user to the set `{<city>}:members`: a write that only works on the slot's owner.
/// Replies the users it placed, sorted.
#[gears::register]
pub fn place_by_city() -> GearsBuilder<RedisBytes> {
    GearsBuilder::new(KeysReader::new("user:*"))
        .map(|r| (city(&r), r.key.clone()))
        .repartition(|(city, _)| format!("{{{city}}}"))
        .try_map(|(city, user)| {
            let members = format!("{{{city}}}:members");
            context::call_bytes(&[b"SADD", members.as_bytes(), &user]).map(|_| user)
        })
        .sort()
}

/// Writes `copy:<key>` for each key matching `ARGS <pattern>`, from the shard that read the
/// key, without a repartition: on a cluster most of these writes are refused, with an error
/// naming the slot (the pattern to follow is `{hashtag}` keys, see docs/cluster.md).
#[gears::register]
pub fn copy_without_hashtag(args: &[String]) -> Result<GearsBuilder<RedisBytes>, String> {
    let [pattern] = args else {
        return Err("usage: copy_without_hashtag <pattern>".into());
    };
    Ok(GearsBuilder::new(KeysOnlyReader::new(pattern.clone()))
        .try_map(|k| {
            let copy = [b"copy:", k.as_bytes()].concat();
            context::call_bytes(&[b"SET", &copy, b"1"]).map(|_| k)
        })
        .sort())
}

/// Writes `{<hashtag>}:copy:<key>` for each key matching `ARGS <pattern>`, with this shard's
/// hashtag: always local.
#[gears::register]
pub fn copy_with_hashtag(args: &[String]) -> Result<GearsBuilder<RedisBytes>, String> {
    let [pattern] = args else {
        return Err("usage: copy_with_hashtag <pattern>".into());
    };
    Ok(GearsBuilder::new(KeysOnlyReader::new(pattern.clone()))
        .try_map(|k| {
            let tag = context::hashtag()?;
            let copy = [format!("{{{tag}}}:copy:").as_bytes(), &k].concat();
            context::call_bytes(&[b"SET", &copy, b"1"]).map(|_| k)
        })
        .sort())
}

/// Every write to a key matching `ARGS <pattern>` sets `{<key>}:seen_by` to the id of the
/// shard that ran the execution (the key's owner: registrations fire where the key lives).
/// Instantiate with `RG.REGISTER mark_owner ARGS <pattern>`.
#[gears::register]
pub fn mark_owner(args: &[String]) -> Result<Registration, GearsError> {
    let [pattern] = args else {
        return Err(GearsError::Invalid(
            "usage: RG.REGISTER mark_owner ARGS <pattern>".into(),
        ));
    };
    GearsBuilder::new(KeysReader::new(pattern.clone()).read_value(false))
        .try_for_each(|r| {
            let shard = context::shard_id()?;
            let seen_by = [b"{", r.key.as_bytes(), b"}:seen_by"].concat();
            context::call_bytes(&[b"SET", &seen_by, shard.0.as_bytes()]).map(|_| ())
        })
        .register(ExecutionMode::AsyncLocal)
}

/// `async` (cluster-wide per event): each write to `tally:*` is moved to the shard owning
/// `{tally}` and appended to the list `{tally}:keys` there.
#[gears::register]
pub fn tally_async() -> Result<Registration, GearsError> {
    GearsBuilder::new(KeysReader::new("tally:*").read_value(false))
        .map(|r| r.key.clone())
        .repartition(|_| "{tally}".to_string())
        .try_for_each(|key| context::call_bytes(&[b"RPUSH", b"{tally}:keys", key]).map(|_| ()))
        .register(ExecutionMode::Async)
}

/// Moves every key name matching `ARGS <pattern>` to the shard owning `<key>#` and counts
/// them there: a pure shuffle (the cluster benchmark's `repartition` throughput).
#[gears::register]
pub fn shuffle(args: &[String]) -> Result<GearsBuilder<u64>, String> {
    let [pattern] = args else {
        return Err("usage: shuffle <pattern>".into());
    };
    Ok(GearsBuilder::new(KeysOnlyReader::new(pattern.clone()))
        .repartition(|k| [k.as_bytes(), b"#"].concat())
        .count())
}

/// `ARGS <n> <bytes>`: each shard makes `n` records of about `bytes` bytes (no keyspace read),
/// moves each to the owner of its key's slot and counts them there: the shuffle alone.
#[gears::register]
pub fn shuffle_generated(args: &[String]) -> Result<GearsBuilder<u64>, String> {
    let [n, bytes] = args else {
        return Err("usage: shuffle_generated <n> <bytes>".into());
    };
    let n: u64 = n.parse().map_err(|_| format!("bad n '{n}'"))?;
    let bytes: usize = bytes.parse().map_err(|_| format!("bad size '{bytes}'"))?;
    Ok(GearsBuilder::new(IterReader::new(move |_| 0..n))
        .map(move |i| {
            let shard = context::shard_id().map(|s| s.0).unwrap_or_default();
            let key = format!("{shard}:{i}");
            let pad = "x".repeat(bytes.saturating_sub(key.len()));
            (key, pad)
        })
        .repartition(|(key, _)| key.clone())
        .count())
}
