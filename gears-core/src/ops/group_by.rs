//! `group_by`: group records by key across shards and reduce each group.

use std::sync::Arc;

use super::local_group_by::GroupFold;
use super::map::plain;
use crate::builder::GearsBuilder;
use crate::plumbing::chain::Chain;
use crate::plumbing::exchange::ByPairKey;
use crate::record::{PartitionKey, Record};

impl<T: Record, C: Chain<Out = T>> GearsBuilder<T, C> {
    /// Groups records by `key_op` across all shards and reduces each group into an accumulator
    /// that starts as a clone of `zero`; emits `(key, accumulator)`.
    ///
    /// As in 1.x, records (not partial results) are moved to the shard owning the key, then
    /// reduced there; to combine locally first use [`aggregate_by`](Self::aggregate_by).
    /// 1.x passes `None` as the first accumulator; here it is a clone of `zero`.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let cluster = gears::testing::MemoryCluster::new(3);
    /// for (i, city) in ["paris", "rome", "paris"].iter().enumerate() {
    ///     cluster.hset(&format!("user:{i}"), &[("city", city)]);
    /// }
    /// let mut out = cluster
    ///     .run(
    ///         GearsBuilder::new(KeysReader::new("user:*"))
    ///             .group_by(|r| r.field("city").unwrap().to_string(), 0u32, |_city, n, _r| *n += 1),
    ///     )
    ///     .results;
    /// out.sort();
    /// assert_eq!(out, [("paris".to_string(), 2), ("rome".to_string(), 1)]);
    /// ```
    pub fn group_by<K, A, KF, R>(self, key_op: KF, zero: A, reducer: R) -> GearsBuilder<(K, A)>
    where
        K: PartitionKey,
        A: Clone + Send + Sync + 'static,
        KF: Fn(&T) -> K + Send + Sync + 'static,
        R: Fn(&K, &mut A, T) + Send + Sync + 'static,
    {
        let key_op = Arc::new(key_op);
        self.then(plain("extract_key", move |t: T| (key_op(&t), t)))
            .exchange(ByPairKey)
            .fold_op(GroupFold {
                kind: "group_by",
                zero,
                split: |pair: (K, T)| pair,
                reduce: reducer,
            })
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::{MemoryCluster, MemoryHost};

    #[test]
    fn cluster_matches_single_and_catches_panics() {
        let flow = || {
            GearsBuilder::new(KeysReader::new("*"))
                .map(|r| r.string().unwrap().parse::<u32>().unwrap())
                .group_by(
                    |n| n % 5,
                    0u32,
                    |_, a, n| {
                        assert!(n != 13, "thirteen");
                        *a += n
                    },
                )
        };
        let host = MemoryHost::new();
        let cluster = MemoryCluster::new(3);
        for i in 0..100u32 {
            host.set(format!("n{i}"), i.to_string());
            cluster.set(format!("n{i}"), i.to_string());
        }
        let mut single = flow().run(&host);
        let mut multi = cluster.run(flow());
        single.results.sort();
        multi.results.sort();
        assert_eq!(single.results, multi.results);
        assert_eq!(single.results.len(), 5);
        assert_eq!(single.errors.len(), 1);
        assert_eq!(multi.errors.len(), 1);
        assert_eq!(multi.errors[0].step, "group_by");
        let empty = GearsBuilder::new(KeysOnlyReader::new("none")).group_by(
            |k| k.clone(),
            0,
            |_, a: &mut i32, _| *a += 1,
        );
        assert!(cluster.run(empty).results.is_empty());
    }
}
