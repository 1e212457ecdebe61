//! `collect`: ship every record to the shard that started the execution.

use crate::builder::GearsBuilder;
use crate::plumbing::chain::Chain;
use crate::plumbing::exchange::ToInitiator;
use crate::record::Record;

impl<T: Record, C: Chain<Out = T>> GearsBuilder<T, C> {
    /// Sends every record to the shard that started the execution (a global step: it ends a
    /// stage). On a single server it passes records through. Records travel in encoded batches.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let cluster = gears::testing::MemoryCluster::new(3);
    /// // One record per shard, all gathered, then limited globally.
    /// let out = cluster.run(GearsBuilder::new(ShardsIdReader).collect().limit(2, 0));
    /// assert_eq!(out.results.len(), 2);
    /// ```
    pub fn collect(self) -> GearsBuilder<T> {
        self.exchange(ToInitiator)
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::MemoryCluster;

    #[test]
    fn gathers_from_every_shard() {
        let cluster = MemoryCluster::new(3);
        for i in 0..30 {
            cluster.set(format!("k{i}"), "v");
        }
        // Without collect, the limit is per shard (3 × 2); after it, global.
        let per_shard = cluster.run(GearsBuilder::new(KeysOnlyReader::new("*")).limit(2, 0));
        assert_eq!(per_shard.results.len(), 6);
        let global = cluster.run(
            GearsBuilder::new(KeysOnlyReader::new("*"))
                .collect()
                .limit(2, 0),
        );
        assert_eq!(global.results.len(), 2);
        let empty = cluster.run(GearsBuilder::new(KeysOnlyReader::new("none:*")).collect());
        assert!(empty.results.is_empty());
    }
}
