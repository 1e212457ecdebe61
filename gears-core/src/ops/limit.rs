//! `limit`: keep the records whose index is in `[start, start + length)`, per shard.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::builder::GearsBuilder;
use crate::plumbing::chain::Chain;
use crate::plumbing::nodes::BatchOp;

struct Limit {
    start: usize,
    end: usize,
    seen: AtomicUsize,
}

impl<T> BatchOp<T, T> for Limit {
    const KIND: &'static str = "limit";
    fn apply(&self, items: &mut std::vec::Drain<'_, T>, out: &mut Vec<T>) -> Result<(), String> {
        let seen = self.seen.load(Ordering::Relaxed);
        let n = items.len();
        let skip = self.start.saturating_sub(seen).min(n);
        let take = self.end.saturating_sub(seen.max(self.start)).min(n - skip);
        out.extend(items.skip(skip).take(take));
        self.seen.store(seen + n, Ordering::Relaxed);
        Ok(())
    }

    fn satisfied(&self) -> bool {
        self.seen.load(Ordering::Relaxed) >= self.end
    }
}

impl<T: Send + 'static, C: Chain<Out = T>> GearsBuilder<T, C> {
    /// Keeps the records at positions `start .. start + length` and stops pulling input once
    /// past them. Like 1.x this is applied **per shard**; use it after
    /// [`collect`](Self::collect) for a global limit.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let out = gears::testing::example(|_| GearsBuilder::new(IterReader::new(|_| 0..100u32)).limit(3, 10));
    /// assert_eq!(out, [10, 11, 12]);
    /// ```
    pub fn limit(self, length: usize, start: usize) -> GearsBuilder<T> {
        let end = start.saturating_add(length);
        self.batch_op(move || Limit {
            start,
            end,
            seen: AtomicUsize::new(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use crate::plan::RunOptions;
    use crate::prelude::*;
    use crate::testing::MemoryHost;

    fn run(n: u32, length: usize, start: usize, batch: usize) -> Vec<u32> {
        let host: Arc<dyn crate::host::Host> = Arc::new(MemoryHost::new());
        let options = RunOptions {
            batch,
            ..RunOptions::default()
        };
        GearsBuilder::new(IterReader::new(move |_| 0..n))
            .limit(length, start)
            .build()
            .run_with(host, None, &options)
            .unwrap()
            .results
    }

    #[test]
    fn windows_across_batches() {
        for batch in [1, 3, 7, 1024] {
            assert_eq!(run(20, 5, 3, batch), [3, 4, 5, 6, 7], "batch {batch}");
            assert_eq!(
                run(20, 100, 18, batch),
                [18, 19],
                "beyond length, batch {batch}"
            );
            assert!(run(0, 5, 0, batch).is_empty());
            assert_eq!(run(1, 5, 0, batch), [0]);
            assert!(run(20, 0, 0, batch).is_empty());
            assert!(run(20, 5, 50, batch).is_empty());
        }
    }

    #[test]
    fn stops_pulling() {
        let host = MemoryHost::new();
        let pulled = Arc::new(AtomicUsize::new(0));
        let p = pulled.clone();
        let out = GearsBuilder::new(IterReader::new(move |_| {
            let p = p.clone();
            (0..1_000_000u32).inspect(move |_| {
                p.fetch_add(1, Ordering::Relaxed);
            })
        }))
        .limit(2, 0)
        .run(&host);
        assert_eq!(out.results, [0, 1]);
        assert!(pulled.load(Ordering::Relaxed) <= 2048, "read too much");
    }
}
