use std::sync::Arc;

use super::{Reader, ReaderCx, ReaderRun};
use crate::error::GearsError;
use crate::host::Topology;

/// Records from a closure run on every shard (RedisGears 1.x's `PythonReader`).
///
/// The closure receives the shard's topology and returns any iterator.
///
/// ```
/// # use gears_core as gears;
/// use gears::prelude::*;
/// let out = gears::testing::example(|_| GearsBuilder::new(IterReader::new(|_| 1..=3u32)));
/// assert_eq!(out, [1, 2, 3]);
/// ```
pub struct IterReader<F> {
    make: F,
}

impl<F> IterReader<F> {
    /// A reader yielding what `make` returns on each shard.
    pub fn new<I>(make: F) -> Self
    where
        F: Fn(&Topology) -> I + Send + Sync + 'static,
        I: IntoIterator,
        I::IntoIter: Send + 'static,
    {
        Self { make }
    }
}

struct IterRun<I>(I);

impl<I: Iterator + Send> ReaderRun<I::Item> for IterRun<I> {
    fn next_batch(&mut self, out: &mut Vec<I::Item>, max: usize) -> Result<bool, GearsError> {
        let before = out.len();
        out.extend(self.0.by_ref().take(max));
        Ok(out.len() - before == max)
    }
}

impl<F, I> Reader for IterReader<F>
where
    F: Fn(&Topology) -> I + Send + Sync + 'static,
    I: IntoIterator,
    I::IntoIter: Send + 'static,
    I::Item: Send + 'static,
{
    type Record = I::Item;

    fn name(&self) -> &'static str {
        "IterReader"
    }

    fn open(&self, cx: &ReaderCx<'_>) -> Result<Box<dyn ReaderRun<I::Item>>, GearsError> {
        let topology = cx.host.topology();
        Ok(Box::new(IterRun((self.make)(&topology).into_iter())))
    }
}

/// Records copied from a shared slice, on every shard (fast path for in-memory data).
///
/// ```
/// # use gears_core as gears;
/// use gears::prelude::*;
/// let data: std::sync::Arc<[u64]> = (0..5).collect();
/// let out = gears::testing::example(|_| GearsBuilder::new(SliceReader::new(data)).count());
/// assert_eq!(out, [5]);
/// ```
pub struct SliceReader<T> {
    data: Arc<[T]>,
}

impl<T> SliceReader<T> {
    /// A reader yielding clones of `data`'s elements.
    pub fn new(data: Arc<[T]>) -> Self {
        Self { data }
    }
}

struct SliceRun<T> {
    data: Arc<[T]>,
    pos: usize,
}

impl<T: Clone + Send + Sync> ReaderRun<T> for SliceRun<T> {
    fn next_batch(&mut self, out: &mut Vec<T>, max: usize) -> Result<bool, GearsError> {
        let end = (self.pos + max).min(self.data.len());
        out.extend_from_slice(&self.data[self.pos..end]);
        self.pos = end;
        Ok(self.pos < self.data.len())
    }
}

impl<T: Clone + Send + Sync + 'static> Reader for SliceReader<T> {
    type Record = T;

    fn name(&self) -> &'static str {
        "SliceReader"
    }

    fn open(&self, _cx: &ReaderCx<'_>) -> Result<Box<dyn ReaderRun<T>>, GearsError> {
        Ok(Box::new(SliceRun {
            data: self.data.clone(),
            pos: 0,
        }))
    }
}
