//! `sort`: all records, globally sorted, on the initiator.

use std::cell::Cell;
use std::cmp::Ordering;
use std::sync::Arc;

use crate::builder::GearsBuilder;
use crate::error::StepError;
use crate::plumbing::chain::Chain;
use crate::plumbing::nodes::FoldOp;
use crate::plumbing::pull::guarded_once;
use crate::record::Record;

struct SortAll<C> {
    kind: &'static str,
    cmp: Arc<C>,
}

impl<T, C> FoldOp<T, T> for SortAll<C>
where
    T: Send + 'static,
    C: Fn(&T, &T) -> Ordering + Send + Sync + 'static,
{
    type State = Vec<T>;

    fn kind(&self) -> &'static str {
        self.kind
    }

    fn start(&self) -> Vec<T> {
        Vec::new()
    }

    #[inline(always)]
    fn add(&self, all: &mut Vec<T>, item: T, _: &Cell<&'static str>) -> Result<(), String> {
        all.push(item);
        Ok(())
    }

    fn finish(&self, mut all: Vec<T>, _: bool, out: &mut Vec<T>, errors: &mut Vec<StepError>) {
        // A panicking comparator leaves the records in some order: they are kept.
        let cmp = &*self.cmp;
        guarded_once(self.kind, errors, || {
            all.sort_by(cmp);
            Ok(())
        });
        out.append(&mut all);
    }
}

impl<T: Record, C: Chain<Out = T>> GearsBuilder<T, C> {
    /// Sorts all records of all shards in **ascending** order (each shard sorts its own, the
    /// initiator merges). 1.x's `sort()` defaults to descending: use
    /// [`sort_desc`](Self::sort_desc) for that.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let cluster = gears::testing::MemoryCluster::new(3);
    /// let out = cluster.run(GearsBuilder::new(IterReader::new(|_| [3u8, 1, 2])).sort());
    /// assert_eq!(out.results, [1, 1, 1, 2, 2, 2, 3, 3, 3]);
    /// ```
    pub fn sort(self) -> GearsBuilder<T>
    where
        T: Ord,
    {
        self.sort_by(T::cmp)
    }

    /// Sorts all records in descending order (1.x's default `sort()`).
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let out = gears::testing::example(|_| GearsBuilder::new(IterReader::new(|_| [3u8, 1, 2])).sort_desc());
    /// assert_eq!(out, [3, 2, 1]);
    /// ```
    pub fn sort_desc(self) -> GearsBuilder<T>
    where
        T: Ord,
    {
        self.sort_by(|a: &T, b: &T| b.cmp(a))
    }

    /// Sorts all records with `compare` (stable). A panicking comparator becomes an error entry
    /// and the records are returned in an unspecified order.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let out = gears::testing::example(|_| {
    ///     GearsBuilder::new(IterReader::new(|_| [2.5f64, -1.0, 9.0])).sort_by(|a, b| a.total_cmp(b))
    /// });
    /// assert_eq!(out, [-1.0, 2.5, 9.0]);
    /// ```
    pub fn sort_by<F>(self, compare: F) -> GearsBuilder<T>
    where
        F: Fn(&T, &T) -> Ordering + Send + Sync + 'static,
    {
        let cmp = Arc::new(compare);
        self.fold_op(SortAll {
            kind: "sort",
            cmp: cmp.clone(),
        })
        .collect()
        .fold_op(SortAll { kind: "sort", cmp })
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::MemoryHost;

    #[test]
    fn edge_cases() {
        let host = MemoryHost::new();
        let empty = GearsBuilder::new(IterReader::new(|_| 0..0u8)).sort();
        assert!(empty.run(&host).results.is_empty());
        let one = GearsBuilder::new(IterReader::new(|_| [1u8])).sort_desc();
        assert_eq!(one.run(&host).results, [1]);
        let out = GearsBuilder::new(IterReader::new(|_| [3u8, 1, 2]))
            .sort_by(|_, _| panic!("cmp"))
            .run(&host);
        let mut r = out.results.clone();
        r.sort();
        assert_eq!(r, [1, 2, 3], "nothing lost");
        assert!(!out.errors.is_empty());
    }
}
