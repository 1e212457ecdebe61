//! Example Gears module: statistics over `user:*` hashes (`city`, `age` fields), showing the
//! three ways to group: `group_by` (records move to the key's shard, then reduce),
//! `aggregate_by` (partials combined on each shard first) and `count_by`.
//!
//! ```text
//! redis-server --loadmodule target/release/libgears_cities.so
//! redis-cli HSET user:ann city paris age 31
//! redis-cli RG.RUN users_per_city          # [[[paris,1]],[]]
//! ```

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

#[cfg(test)]
mod tests {
    use super::*;
    use gears::testing::{MemoryCluster, MemoryHost};

    fn load(hset: impl Fn(&str, &[(&str, &str)])) {
        for (name, city, age) in [
            ("ann", "paris", "31"),
            ("bob", "rome", "45"),
            ("cid", "paris", "27"),
            ("dee", "oslo", "38"),
        ] {
            hset(&format!("user:{name}"), &[("city", city), ("age", age)]);
        }
    }

    #[test]
    fn one_server_and_three_shards_agree() {
        let host = MemoryHost::new();
        let cluster = MemoryCluster::new(3);
        load(|k, f| host.hset(k, f));
        load(|k, f| cluster.hset(k, f));
        let expected = [
            ("oslo".to_string(), 1),
            ("paris".into(), 2),
            ("rome".into(), 1),
        ];
        assert_eq!(users_per_city().run(&host).results, expected);
        assert_eq!(cluster.run(users_per_city()).results, expected);
        assert_eq!(cluster.run(city_counts()).results, expected);
        let ages = cluster.run(average_age_per_city()).results;
        assert_eq!(ages[1], ("paris".to_string(), 29.0));
        let n = cluster.run(count_keys(&["user:*".into()]).unwrap()).results;
        assert_eq!(n, [4]);
        assert!(count_keys(&[]).is_err());
    }
}

gears::export! { name: "cities" }
