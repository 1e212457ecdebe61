//! `avg`: the mean of a numeric projection of the records, over all shards.

use crate::builder::GearsBuilder;
use crate::error::StepError;
use crate::plumbing::chain::Chain;
use crate::plumbing::nodes::FoldOp;
use std::cell::Cell;

/// Sums and counts a shard's values; emits `(sum, count)` if it saw any.
struct PartialMean<F>(F);

impl<T, F> FoldOp<T, (f64, u64)> for PartialMean<F>
where
    T: Send + 'static,
    F: Fn(&T) -> f64 + Send + Sync + 'static,
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
        item: T,
        at: &Cell<&'static str>,
    ) -> Result<(), String> {
        at.set("avg");
        *sum += (self.0)(&item);
        *n += 1;
        Ok(())
    }

    fn finish(
        &self,
        (sum, n): (f64, u64),
        _: bool,
        out: &mut Vec<(f64, u64)>,
        _: &mut Vec<StepError>,
    ) {
        if n > 0 {
            out.push((sum, n));
        }
    }
}

/// Merges partial means on the initiator.
struct Mean;

impl FoldOp<(f64, u64), f64> for Mean {
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
        (s, c): (f64, u64),
        _: &Cell<&'static str>,
    ) -> Result<(), String> {
        *sum += s;
        *n += c;
        Ok(())
    }

    fn finish(
        &self,
        (sum, n): (f64, u64),
        initiator: bool,
        out: &mut Vec<f64>,
        _: &mut Vec<StepError>,
    ) {
        if initiator && n > 0 {
            out.push(sum / n as f64);
        }
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
        self.fold_op(PartialMean(value_op)).collect().fold_op(Mean)
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
