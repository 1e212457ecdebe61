//! Example Gears module: statistics over `user:*` hashes (`city`, `age` fields), showing the
//! three ways to group: `group_by` (records move to the key's shard, then reduce),
//! `aggregate_by` (partials combined on each shard first) and `count_by`.
//!
//! ```text
//! redis-server --loadmodule target/release/libgears_cities.so
//! redis-cli HSET user:ann city paris age 31
//! redis-cli RG.RUN users_per_city          # [[[paris,1]],[]]
//! ```

mod cities;

pub use cities::*;

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
