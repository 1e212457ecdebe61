//! `repartition`: move each record to the shard owning its key's hash slot.

use crate::builder::GearsBuilder;
use crate::plumbing::chain::Chain;
use crate::plumbing::exchange::ByKey;
use crate::record::{PartitionKey, Record};

impl<T: Record, C: Chain<Out = T>> GearsBuilder<T, C> {
    /// Sends each record to the shard that owns the hash slot of `key_op(record)` (CRC16,
    /// `{hashtag}` aware): after it, a step can write keys derived from that key locally.
    /// A global step: it ends a stage. On a single server it passes records through.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let cluster = gears::testing::MemoryCluster::new(3);
    /// for i in 0..20 {
    ///     cluster.set(&format!("src:{i}"), &i.to_string());
    /// }
    /// // Write `dst:{i}` from the shard that owns it: no cross-slot error.
    /// let out = cluster.run(
    ///     GearsBuilder::new(KeysReader::new("src:*"))
    ///         .map(|r| format!("dst:{}", r.string().unwrap()))
    ///         .repartition(|k| k.clone())
    ///         .try_map(|k| gears::context::call(&["SET", &k, "1"]).map(|_| k)),
    /// );
    /// assert!(out.errors.is_empty(), "{:?}", out.errors);
    /// assert_eq!(out.results.len(), 20);
    /// ```
    pub fn repartition<K, F>(self, key_op: F) -> GearsBuilder<T>
    where
        K: PartitionKey,
        F: Fn(&T) -> K + Send + Sync + 'static,
    {
        self.exchange(ByKey(key_op))
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::MemoryCluster;

    #[test]
    fn records_land_on_their_slot_owner() {
        let cluster = MemoryCluster::new(3);
        let out = cluster.run(
            GearsBuilder::new(IterReader::new(|_| (0..100u32).map(|i| format!("k{i}"))))
                .repartition(|k| k.clone())
                .try_map(|k| {
                    let me = gears_context_shard()?;
                    Ok::<_, GearsError>((k, me))
                }),
        );
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!(out.results.len(), 300);
        let topo = cluster.topology();
        for (key, shard) in &out.results {
            let owner = &topo.shards()[topo.owner_of_key(key.as_bytes())].id;
            assert_eq!(owner, shard, "{key}");
        }
    }

    fn gears_context_shard() -> Result<ShardId, GearsError> {
        crate::context::shard_id()
    }

    #[test]
    fn panicking_key_drops_the_record() {
        let cluster = MemoryCluster::new(2);
        let out = cluster.run(
            GearsBuilder::new(IterReader::new(|_| 0..10u32)).repartition(|x| {
                if *x == 3 {
                    panic!("no key")
                } else {
                    *x
                }
            }),
        );
        assert_eq!(out.results.len(), 18);
        assert_eq!(out.errors.len(), 2);
        assert_eq!(out.errors[0].step, "repartition");
    }
}
