//! Example Gears module: word count, plus small flows showing readers and errors. Load it
//! with `redis-server --loadmodule libgears_wordcount.so` and run its flows with
//! `RG.RUN <function> [ARGS ...]` (`RG.DUMPFUNCTIONS` lists them). Each flow runs unchanged on
//! one server or a cluster; the unit tests below check that on the in-memory hosts.

use gears::prelude::*;

// The city statistics of `examples/city-stats`, compiled into this module too: the
// integration tests run them beside the flows below.
#[path = "../../city-stats/src/cities.rs"]
mod cities;
pub use cities::*;

pub mod cluster_flows;

/// Word count: string keys `doc:*` → words → count per word, sorted by word.
#[gears::register]
pub fn word_count() -> GearsBuilder<(String, u64)> {
    GearsBuilder::new(KeysReader::new("doc:*"))
        .flat_map(|r| {
            r.string()
                .unwrap_or_default()
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .count_by(|word| word.clone())
        .sort()
}

/// The `limit` first keys matching a pattern: `ARGS <pattern> <limit>`.
#[gears::register]
pub fn first_keys(args: &[String]) -> Result<GearsBuilder<RedisBytes>, String> {
    let [pattern, limit] = args else {
        return Err("usage: first_keys <pattern> <limit>".into());
    };
    let limit: usize = limit
        .parse()
        .map_err(|_| format!("limit must be a number, got '{limit}'"))?;
    Ok(GearsBuilder::new(KeysOnlyReader::new(pattern.clone()))
        .sort()
        .limit(limit, 0))
}

/// Every key matching `ARGS <pattern>` as `name type value`, sorted: the bytes of names,
/// fields and members as they are (binary keys and values come back unchanged).
///
/// Shows how each key type reads.
#[gears::register]
pub fn describe_keys(args: &[String]) -> Result<GearsBuilder<RedisBytes>, String> {
    let [pattern] = args else {
        return Err("usage: describe_keys <pattern>".into());
    };
    Ok(GearsBuilder::new(KeysReader::new(pattern.clone()))
        .map(|r| {
            let kind = r.key_type.name().as_bytes();
            let value = describe(r.value.as_ref());
            RedisBytes::from([r.key.as_bytes(), b" ", kind, b" ", &value].concat())
        })
        .sort())
}

/// `items` joined by `sep`.
fn join(items: impl IntoIterator<Item = Vec<u8>>, sep: &[u8]) -> Vec<u8> {
    items.into_iter().collect::<Vec<_>>().join(sep)
}

/// `field=value` pairs joined by `sep`.
fn pairs<'a>(
    fields: impl IntoIterator<Item = (&'a RedisBytes, &'a RedisBytes)>,
    sep: &[u8],
) -> Vec<u8> {
    join(
        fields
            .into_iter()
            .map(|(f, v)| [f.as_bytes(), b"=", v].concat()),
        sep,
    )
}

fn describe(value: Option<&KeyValue>) -> Vec<u8> {
    match value {
        None => b"-".to_vec(),
        Some(KeyValue::String(s)) => s.to_vec(),
        Some(KeyValue::Hash(h)) => {
            [format!("{} fields: ", h.len()).as_bytes(), &pairs(h, b",")].concat()
        }
        Some(KeyValue::List(l)) | Some(KeyValue::Set(l)) => {
            join(l.iter().map(|m| m.to_vec()), b",")
        }
        Some(KeyValue::ZSet(z)) => join(
            z.iter()
                .map(|(m, s)| [m.as_bytes(), format!(":{s}").as_bytes()].concat()),
            b",",
        ),
        Some(KeyValue::Stream(entries)) => join(
            entries
                .iter()
                .map(|e| pairs(e.fields.iter().map(|(f, v)| (f, v)), b"&")),
            b",",
        ),
    }
}

/// The records of the keys matching `ARGS <pattern>` as `KeysReader` reads them (`key`, `type`,
/// `value`, `event`), every name, value, field and member with its bytes unchanged.
#[gears::register]
pub fn key_records(args: &[String]) -> Result<GearsBuilder<KeyRecord>, String> {
    let [pattern] = args else {
        return Err("usage: key_records <pattern>".into());
    };
    Ok(GearsBuilder::new(KeysReader::new(pattern.clone())))
}

/// The names of the keys matching `ARGS <pattern>` (KeysOnlyReader), sorted.
#[gears::register]
pub fn key_names(args: &[String]) -> Result<GearsBuilder<RedisBytes>, String> {
    let [pattern] = args else {
        return Err("usage: key_names <pattern>".into());
    };
    Ok(GearsBuilder::new(KeysOnlyReader::new(pattern.clone())).sort())
}

/// Counts `0..n` slowly (1 ms per record): `ARGS <n>`. For trying `RG.ABORTEXECUTION`.
#[gears::register]
pub fn slow_count(args: &[String]) -> Result<GearsBuilder<u64>, String> {
    let n: u64 = match args {
        [n] => n
            .parse()
            .map_err(|_| format!("n must be a number, got '{n}'"))?,
        _ => return Err("usage: slow_count <n>".into()),
    };
    Ok(GearsBuilder::new(IterReader::new(move |_| 0..n))
        .for_each(|_| std::thread::sleep(std::time::Duration::from_millis(1)))
        .count())
}

/// Panics on the record 3 of `0..5`: errors are data, the run goes on.
#[gears::register]
pub fn faulty() -> impl Flow<u64> {
    GearsBuilder::new(IterReader::new(|_| 0..5u64)).map(|n| {
        assert!(n != 3, "three is not allowed");
        n * 10
    })
}

/// Loads the demo's sample data through any `SET`/`HSET`-capable loader.
pub fn sample_data(set: impl Fn(&str, &str), hset: impl Fn(&str, &[(&str, &str)])) {
    let docs = [
        "Redis keeps the data close",
        "Gears keeps the compute close to the data",
        "close the loop",
    ];
    for (i, d) in docs.iter().enumerate() {
        set(&format!("doc:{i}"), d);
    }
    let users = [
        ("ann", "paris", "31"),
        ("bob", "rome", "45"),
        ("cid", "paris", "27"),
        ("dee", "oslo", "38"),
        ("eve", "rome", "52"),
        ("fay", "paris", "44"),
    ];
    for (name, city, age) in users {
        hset(&format!("user:{name}"), &[("city", city), ("age", age)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gears::testing::{MemoryCluster, MemoryHost};

    #[test]
    fn examples_agree_on_one_server_and_three_shards() {
        let host = MemoryHost::new();
        let cluster = MemoryCluster::new(3);
        sample_data(|k, v| host.set(k, v), |k, f| host.hset(k, f));
        sample_data(|k, v| cluster.set(k, v), |k, f| cluster.hset(k, f));
        let single = word_count().run(&host);
        let multi = cluster.run(word_count());
        assert!(single.errors.is_empty() && multi.errors.is_empty());
        assert_eq!(single.results, multi.results);
        assert!(single.results.contains(&("close".to_string(), 3)));
        assert_eq!(
            cluster
                .run(first_keys(&["user:*".into(), "2".into()]).unwrap())
                .results,
            ["user:ann", "user:bob"]
        );
        assert!(first_keys(&["x".into()]).is_err());
    }
}

gears::export! { name: "wordcount" }
