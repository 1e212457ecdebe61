//! `count`: the number of records, over all shards.

use super::aggregate::Combine;
use crate::builder::GearsBuilder;
use crate::error::StepError;
use crate::plumbing::chain::Chain;
use crate::plumbing::nodes::FoldOp;
use std::cell::Cell;

/// Counts a shard's records without looking at them.
struct LocalCount;

impl<T: Send + 'static> FoldOp<T, u64> for LocalCount {
    type State = u64;

    fn kind(&self) -> &'static str {
        "count"
    }

    fn start(&self) -> u64 {
        0
    }

    #[inline(always)]
    fn add(&self, n: &mut u64, _: T, _: &Cell<&'static str>) -> Result<(), String> {
        *n += 1;
        Ok(())
    }

    fn finish(&self, n: u64, _: bool, out: &mut Vec<u64>, _: &mut Vec<StepError>) {
        if n > 0 {
            out.push(n);
        }
    }
}

impl<T: Send + 'static, C: Chain<Out = T>> GearsBuilder<T, C> {
    /// Counts the records of all shards: each shard counts locally and only the counts travel.
    ///
    /// Differs from 1.x on empty input: the result is `0` (1.x returns no record).
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let cluster = gears::testing::MemoryCluster::new(3);
    /// for i in 0..100 {
    ///     cluster.set(&format!("k{i}"), "v");
    /// }
    /// assert_eq!(cluster.run(GearsBuilder::new(KeysOnlyReader::new("*")).count()).results, [100]);
    /// assert_eq!(cluster.run(GearsBuilder::new(KeysOnlyReader::new("x*")).count()).results, [0]);
    /// ```
    pub fn count(self) -> GearsBuilder<u64> {
        self.fold_op(LocalCount).collect().fold_op(Combine {
            kind: "count",
            zero: 0u64,
            comb: |total: &mut u64, n: u64| *total += n,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::MemoryHost;

    #[test]
    fn edge_cases() {
        let host = MemoryHost::new();
        let n = |k: u32| {
            GearsBuilder::new(IterReader::new(move |_| 0..k))
                .count()
                .run(&host)
                .results
        };
        assert_eq!(n(0), [0]);
        assert_eq!(n(1), [1]);
        assert_eq!(n(5000), [5000]);
    }
}
