//! `count_by`: the number of records per key, over all shards.

use crate::builder::GearsBuilder;
use crate::plumbing::chain::Chain;
use crate::record::PartitionKey;

impl<T: Send + 'static, C: Chain<Out = T>> GearsBuilder<T, C> {
    /// Counts records per `key_op(record)` across shards (combined locally first); emits
    /// `(key, count)`.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let mut out = gears::testing::example(|_| {
    ///     GearsBuilder::new(IterReader::new(|_| ["a", "b", "a"])).count_by(|w| w.to_string())
    /// });
    /// out.sort();
    /// assert_eq!(out, [("a".to_string(), 2), ("b".to_string(), 1)]);
    /// ```
    pub fn count_by<K, KF>(self, key_op: KF) -> GearsBuilder<(K, u64)>
    where
        K: PartitionKey,
        KF: Fn(&T) -> K + Send + Sync + 'static,
    {
        self.aggregate_by_named("count_by", key_op, 0u64, |n, _| *n += 1, |n, m| *n += m)
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::MemoryCluster;

    #[test]
    fn duplicates_and_panics() {
        let cluster = MemoryCluster::new(3);
        let out = cluster.run(
            GearsBuilder::new(IterReader::new(|_| ["x", "y", "x", "boom"])).count_by(|w| {
                if *w == "boom" {
                    panic!("boom")
                } else {
                    w.to_string()
                }
            }),
        );
        let mut results = out.results;
        results.sort();
        assert_eq!(results, [("x".to_string(), 6), ("y".to_string(), 3)]);
        assert_eq!(out.errors.len(), 3);
    }
}
