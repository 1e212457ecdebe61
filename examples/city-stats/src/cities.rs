//! The city statistics flows. `examples/wordcount` compiles this file too (`#[path]`), so the
//! integration tests' module has them beside its other flows.

use gears::prelude::*;

/// Users per city over `user:*` hashes with `count_by` (combined on each shard first).
///
/// The group-by-count of the benchmark against Lua: counts move between shards, not records.
#[gears::register]
pub fn city_counts() -> GearsBuilder<(String, u64)> {
    GearsBuilder::new(KeysReader::new("user:*"))
        .filter(|r| r.key_type == KeyType::Hash)
        .count_by(|r| r.field("city").unwrap_or("unknown").to_string())
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

/// Counts the keys matching `ARGS <pattern>`, reading their values.
///
/// The bare iteration the group-by benchmark compares with.
#[gears::register]
pub fn count_keys(args: &[String]) -> Result<GearsBuilder<u64>, String> {
    let [pattern] = args else {
        return Err("usage: count_keys <pattern>".into());
    };
    Ok(GearsBuilder::new(KeysReader::new(pattern.clone())).count())
}
