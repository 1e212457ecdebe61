use super::{Once, Reader, ReaderCx, ReaderRun};
use crate::error::GearsError;

/// Yields one record per shard: the shard's id.
///
/// Differs from 1.x on a standalone server: the id is forty `0`s (1.x yields `"1"`), the same id
/// execution ids carry.
///
/// ```
/// # use gears_core as gears;
/// use gears::prelude::*;
/// let cluster = gears::testing::MemoryCluster::new(3);
/// let ids = cluster.run(GearsBuilder::new(ShardsIdReader)).results;
/// assert_eq!(ids.len(), 3);
/// assert!(ids.iter().all(|id| id.len() == 40));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ShardsIdReader;

impl Reader for ShardsIdReader {
    type Record = String;

    fn name(&self) -> &'static str {
        "ShardsIDReader"
    }

    fn open(&self, cx: &ReaderCx<'_>) -> Result<Box<dyn ReaderRun<String>>, GearsError> {
        let id = cx.host.topology().my_id().0.clone();
        Ok(Box::new(Once(Some(vec![id].into_iter()))))
    }
}
