//! `distinct`: each different record once, over all shards.

use std::cell::Cell;
use std::collections::HashSet;
use std::hash::Hash;

use crate::builder::GearsBuilder;
use crate::error::StepError;
use crate::plumbing::chain::Chain;
use crate::plumbing::nodes::FoldOp;
use crate::record::Record;

struct Distinct;

impl<T> FoldOp<T, T> for Distinct
where
    T: Hash + Eq + Clone + Send + 'static,
{
    type State = (HashSet<T>, Vec<T>);

    fn kind(&self) -> &'static str {
        "distinct"
    }

    fn start(&self) -> Self::State {
        (HashSet::new(), Vec::new())
    }

    fn add(
        &self,
        (seen, order): &mut Self::State,
        item: T,
        at: &Cell<&'static str>,
    ) -> Result<(), String> {
        at.set("distinct");
        if !seen.contains(&item) {
            seen.insert(item.clone());
            order.push(item);
        }
        Ok(())
    }

    fn finish(&self, (_, order): Self::State, _: bool, out: &mut Vec<T>, _: &mut Vec<StepError>) {
        out.extend(order);
    }
}

impl<T: Record, C: Chain<Out = T>> GearsBuilder<T, C> {
    /// Keeps each different record once, across all shards (deduplicated locally first, then
    /// on the initiator), in first-seen order.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let cluster = gears::testing::MemoryCluster::new(3);
    /// let mut out = cluster
    ///     .run(GearsBuilder::new(IterReader::new(|_| ["a", "b", "a"])).map(String::from).distinct())
    ///     .results;
    /// out.sort();
    /// assert_eq!(out, ["a", "b"]);
    /// ```
    pub fn distinct(self) -> GearsBuilder<T>
    where
        T: Hash + Eq + Clone,
    {
        self.fold_op(Distinct).collect().fold_op(Distinct)
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::MemoryHost;

    #[test]
    fn edge_cases() {
        let host = MemoryHost::new();
        let empty = GearsBuilder::new(IterReader::new(|_| 0..0u8)).distinct();
        assert!(empty.run(&host).results.is_empty());
        let out = GearsBuilder::new(IterReader::new(|_| [2u8, 1, 2, 2, 3, 1])).distinct();
        assert_eq!(out.run(&host).results, [2, 1, 3]);
    }
}
