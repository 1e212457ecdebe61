//! Example Gears module: load it with `redis-server --loadmodule libgears_wordcount.so` and
//! run its flows with `RG.RUN <function> [ARGS ...]` (`RG.DUMPFUNCTIONS` lists them). Each flow
//! runs unchanged on one server or a cluster; the unit tests below check that on the
//! in-memory hosts.

use gears::prelude::*;

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

/// Users per city over `user:*` hashes (group_by on a hash field).
#[gears::register]
pub fn users_per_city() -> GearsBuilder<(String, u64)> {
    GearsBuilder::new(KeysReader::new("user:*"))
        .filter(|r| r.key_type == KeyType::Hash)
        .group_by(
            |r| r.field("city").unwrap_or("unknown").to_string(),
            0u64,
            |_city, n, _user| *n += 1,
        )
        .sort()
}

/// Average age of users per city: `aggregate_by` combining locally before shipping partials.
#[gears::register]
pub fn average_age_per_city() -> GearsBuilder<(String, f64)> {
    GearsBuilder::new(KeysReader::new("user:*"))
        .try_map(|r| {
            let city = r.field("city").unwrap_or("unknown").to_string();
            let age: f64 = r
                .field("age")
                .ok_or_else(|| format!("{} has no age", r.key))?
                .parse()
                .map_err(|e| format!("{}: bad age: {e}", r.key))?;
            Ok::<_, String>((city, age))
        })
        .aggregate_by(
            |(city, _)| city.clone(),
            (0.0f64, 0u64),
            |(sum, n), (_, age)| {
                *sum += age;
                *n += 1;
            },
            |(sum, n), (s, m)| {
                *sum += s;
                *n += m;
            },
        )
        .map(|(city, (sum, n))| (city, sum / n as f64))
        .sort_by(|a, b| a.0.cmp(&b.0))
}

/// The `limit` first keys matching a pattern: `ARGS <pattern> <limit>`.
#[gears::register]
pub fn first_keys(args: &[String]) -> Result<GearsBuilder<String>, String> {
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

/// Counts the keys matching `ARGS <pattern>`, reading their values: the bare iteration the
/// group-by benchmark compares with.
#[gears::register]
pub fn count_keys(args: &[String]) -> Result<GearsBuilder<u64>, String> {
    let [pattern] = args else {
        return Err("usage: count_keys <pattern>".into());
    };
    Ok(GearsBuilder::new(KeysReader::new(pattern.clone())).count())
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
            cluster.run(users_per_city()).results,
            [
                ("oslo".to_string(), 1),
                ("paris".into(), 3),
                ("rome".into(), 2)
            ]
        );
        let ages = cluster.run(average_age_per_city()).results;
        assert_eq!(ages[1], ("paris".to_string(), (31.0 + 27.0 + 44.0) / 3.0));
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
