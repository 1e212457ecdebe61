//! `aggregate_by`: per-key aggregation that combines locally before crossing shards.

use std::sync::Arc;

use super::local_group_by::GroupFold;
use crate::builder::GearsBuilder;
use crate::plumbing::chain::Chain;
use crate::plumbing::exchange::ByPairKey;
use crate::record::{PartitionKey, Record};

impl<T: Send + 'static, C: Chain<Out = T>> GearsBuilder<T, C> {
    /// Aggregates records per key across shards: each shard folds its records per key with
    /// `seq_op` into clones of `zero`, only the `(key, partial)` pairs move to the shard owning
    /// the key, where `comb_op` merges them. Emits `(key, value)`.
    ///
    /// Differs from 1.x: `seq_op` and `comb_op` update the accumulator in place and do not
    /// receive the key (1.x passes `(key, accumulator or zero, record)`); key on the record
    /// instead if you need it.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let cluster = gears::testing::MemoryCluster::new(3);
    /// let mut out = cluster
    ///     .run(
    ///         GearsBuilder::new(IterReader::new(|_| 1..=6u32))
    ///             .aggregate_by(|n| n % 2 == 0, 0u32, |sum, n| *sum += n, |sum, part| *sum += part),
    ///     )
    ///     .results;
    /// out.sort();
    /// // Every shard yields 1..=6: odd sum 9, even sum 12, three times.
    /// assert_eq!(out, [(false, 27), (true, 36)]);
    /// ```
    pub fn aggregate_by<K, A, KF, S, M>(
        self,
        key_op: KF,
        zero: A,
        seq_op: S,
        comb_op: M,
    ) -> GearsBuilder<(K, A)>
    where
        K: PartitionKey,
        A: Record + Clone + Sync,
        KF: Fn(&T) -> K + Send + Sync + 'static,
        S: Fn(&mut A, T) + Send + Sync + 'static,
        M: Fn(&mut A, A) + Send + Sync + 'static,
    {
        self.aggregate_by_named("aggregate_by", key_op, zero, seq_op, comb_op)
    }

    /// [`aggregate_by`](Self::aggregate_by) whose steps (and errors) carry `kind`.
    pub(crate) fn aggregate_by_named<K: PartitionKey, A: Record + Clone + Sync>(
        self,
        kind: &'static str,
        key_op: impl Fn(&T) -> K + Send + Sync + 'static,
        zero: A,
        seq_op: impl Fn(&mut A, T) + Send + Sync + 'static,
        comb_op: impl Fn(&mut A, A) + Send + Sync + 'static,
    ) -> GearsBuilder<(K, A)> {
        let key_op = Arc::new(key_op);
        self.fold_op(GroupFold {
            kind,
            zero: zero.clone(),
            split: move |t: T| (key_op(&t), t),
            reduce: move |_: &K, acc: &mut A, t: T| seq_op(acc, t),
        })
        .exchange(ByPairKey)
        .fold_op(GroupFold {
            kind,
            zero,
            split: |pair: (K, A)| pair,
            reduce: move |_: &K, acc: &mut A, part: A| comb_op(acc, part),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::{MemoryCluster, MemoryHost};

    #[test]
    fn ships_partials_not_records() {
        let cluster = MemoryCluster::new(3);
        let out = cluster.run(
            GearsBuilder::new(IterReader::new(|_| 0..10_000u32)).aggregate_by(
                |n| n % 4,
                0u64,
                |a, n| *a += n as u64,
                |a, b| *a += b,
            ),
        );
        // The exchange step saw one partial per key per shard, not 30 000 records.
        let exchanged = out
            .stats
            .iter()
            .find(|(s, _)| s.kind == "repartition")
            .map(|(_, st)| st.records_out)
            .unwrap();
        assert_eq!(exchanged, 12);
        let mut results = out.results;
        results.sort();
        let expected: Vec<(u32, u64)> = (0..4u32)
            .map(|k| {
                (
                    k,
                    3 * (0..10_000u64).filter(|n| n % 4 == k as u64).sum::<u64>(),
                )
            })
            .collect();
        assert_eq!(results, expected);
    }

    #[test]
    fn empty_input() {
        let host = MemoryHost::new();
        let flow = GearsBuilder::new(IterReader::new(|_| 0..0u32)).aggregate_by(
            |n| *n,
            0u32,
            |a, _| *a += 1,
            |a, b| *a += b,
        );
        assert!(flow.run(&host).results.is_empty());
    }
}
