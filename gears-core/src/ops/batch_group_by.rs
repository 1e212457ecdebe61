//! `batch_group_by`: gather each key's records into a list across shards, then reduce it.

use std::cell::Cell;
use std::sync::Arc;

use super::local_group_by::Groups;
use super::map::plain;
use crate::builder::GearsBuilder;
use crate::error::StepError;
use crate::plumbing::chain::Chain;
use crate::plumbing::exchange::ByPairKey;
use crate::plumbing::nodes::FoldOp;
use crate::plumbing::pull::guarded_once;
use crate::record::{PartitionKey, Record};

struct BatchGroup<R>(Arc<R>);

impl<K, T, A, R> FoldOp<(K, T), (K, A)> for BatchGroup<R>
where
    K: PartitionKey,
    T: Send + 'static,
    R: Fn(&K, Vec<T>) -> A + Send + Sync + 'static,
{
    type State = Groups<K, Vec<T>>;

    fn kind(&self) -> &'static str {
        "batch_group_by"
    }

    fn start(&self) -> Self::State {
        Groups::new()
    }

    #[inline(always)]
    fn add(
        &self,
        groups: &mut Self::State,
        (key, record): (K, T),
        _: &Cell<&'static str>,
    ) -> Result<(), String> {
        groups.entry(key, Vec::new).1.push(record);
        Ok(())
    }

    fn finish(
        &self,
        groups: Self::State,
        _: bool,
        out: &mut Vec<(K, A)>,
        errors: &mut Vec<StepError>,
    ) {
        for (key, records) in groups.into_entries() {
            if let Some(a) = guarded_once("batch_group_by", errors, || Ok((self.0)(&key, records)))
            {
                out.push((key, a));
            }
        }
    }
}

impl<T: Record, C: Chain<Out = T>> GearsBuilder<T, C> {
    /// Moves records to the shard owning their key, gathers each key's records into a list
    /// and calls `reducer(key, list)` once per key; emits `(key, result)`. Holds every record
    /// in memory: prefer [`group_by`](Self::group_by) or [`aggregate_by`](Self::aggregate_by).
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let mut out = gears::testing::example(|_| {
    ///     GearsBuilder::new(IterReader::new(|_| [3u32, 1, 2, 10, 30]))
    ///         .batch_group_by(|n| *n >= 10, |_big, mut ns| { ns.sort(); ns })
    /// });
    /// out.sort();
    /// assert_eq!(out, [(false, vec![1, 2, 3]), (true, vec![10, 30])]);
    /// ```
    pub fn batch_group_by<K, A, KF, R>(self, key_op: KF, reducer: R) -> GearsBuilder<(K, A)>
    where
        K: PartitionKey,
        A: Send + 'static,
        KF: Fn(&T) -> K + Send + Sync + 'static,
        R: Fn(&K, Vec<T>) -> A + Send + Sync + 'static,
    {
        let key_op = Arc::new(key_op);
        self.then(plain("extract_key", move |t: T| (key_op(&t), t)))
            .exchange(ByPairKey)
            .fold_op(BatchGroup(Arc::new(reducer)))
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::MemoryCluster;

    #[test]
    fn reducer_panic_loses_only_its_group() {
        let cluster = MemoryCluster::new(3);
        let out = cluster.run(
            GearsBuilder::new(IterReader::new(|_| 0..9u32)).batch_group_by(
                |n| n % 3,
                |k, ns| {
                    assert!(*k != 1, "group one");
                    ns.len()
                },
            ),
        );
        let mut results = out.results;
        results.sort();
        assert_eq!(results, [(0, 9), (2, 9)]);
        assert_eq!(out.errors.len(), 1);
        assert_eq!(out.errors[0].step, "batch_group_by");
    }
}
