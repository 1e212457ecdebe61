//! `avg`: the mean of a numeric projection of the records, over all shards.

use crate::builder::GearsBuilder;
use crate::error::StepError;
use crate::plumbing::chain::Chain;
use crate::plumbing::nodes::FoldOp;
use std::cell::Cell;

/// Sums and counts: `part` is what one input adds to the `(sum, count)` total, and `emit`
/// what the step emits from the total (`initiator`: on the shard that started the run).
struct SumCount<P, E> {
    part: P,
    emit: E,
}

impl<I, O, P, E> FoldOp<I, O> for SumCount<P, E>
where
    P: Fn(I) -> (f64, u64) + Send + Sync + 'static,
    E: Fn((f64, u64), bool) -> Option<O> + Send + Sync + 'static,
{
    type State = (f64, u64);

    fn kind(&self) -> &'static str {
        "avg"
    }

    fn start(&self) -> (f64, u64) {
        (0.0, 0)
    }

    #[inline(always)]
    fn add(
        &self,
        (sum, n): &mut (f64, u64),
        item: I,
        at: &Cell<&'static str>,
    ) -> Result<(), String> {
        at.set("avg");
        let (s, c) = (self.part)(item);
        *sum += s;
        *n += c;
        Ok(())
    }

    fn finish(&self, total: (f64, u64), initiator: bool, out: &mut Vec<O>, _: &mut Vec<StepError>) {
        out.extend((self.emit)(total, initiator));
    }
}

impl<T: Send + 'static, C: Chain<Out = T>> GearsBuilder<T, C> {
    /// The mean of `value_op(record)` over all records of all shards; only `(sum, count)` pairs
    /// cross shards. Emits nothing for empty input (1.x fails with a division error).
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let out = gears::testing::example(|_| GearsBuilder::new(IterReader::new(|_| [1u32, 2, 6])).avg(|n| *n as f64));
    /// assert_eq!(out, [3.0]);
    /// ```
    pub fn avg<F>(self, value_op: F) -> GearsBuilder<f64>
    where
        F: Fn(&T) -> f64 + Send + Sync + 'static,
    {
        // Each shard's `(sum, count)` if it saw any; on the initiator, their mean.
        let partial = SumCount {
            part: move |t: T| (value_op(&t), 1),
            emit: |(sum, n): (f64, u64), _| (n > 0).then_some((sum, n)),
        };
        let mean = SumCount {
            part: |partial: (f64, u64)| partial,
            emit: |(sum, n): (f64, u64), initiator| (initiator && n > 0).then(|| sum / n as f64),
        };
        self.fold_op(partial).collect().fold_op(mean)
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::{MemoryCluster, MemoryHost};

    #[test]
    fn edge_cases() {
        let host = MemoryHost::new();
        let empty = GearsBuilder::new(IterReader::new(|_| 0..0u32)).avg(|n| *n as f64);
        assert!(empty.run(&host).results.is_empty());
        let out = MemoryCluster::new(3).run(
            GearsBuilder::new(IterReader::new(|_| [1u32, 2, 3, 99])).avg(|n| {
                assert!(*n != 99, "bad value");
                *n as f64
            }),
        );
        assert_eq!(out.results, [2.0]);
        assert_eq!(out.errors.len(), 3);
    }
}
