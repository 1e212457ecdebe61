//! `for_each`: a side effect per record; the record passes through unchanged.

use std::sync::Arc;

use super::BatchOp;
use crate::builder::GearsBuilder;

struct ForEach<F>(Arc<F>);

impl<T, F> BatchOp<T, T> for ForEach<F>
where
    F: Fn(&T) + Send + Sync + 'static,
{
    const KIND: &'static str = "for_each";
    fn apply(&self, items: &mut std::vec::Drain<'_, T>, out: &mut Vec<T>) -> Result<(), String> {
        for item in items {
            (self.0)(&item);
            out.push(item);
        }
        Ok(())
    }
}

struct TryForEach<F>(Arc<F>);

impl<T, E, F> BatchOp<T, T> for TryForEach<F>
where
    F: Fn(&T) -> Result<(), E> + Send + Sync + 'static,
    E: std::fmt::Display,
{
    const KIND: &'static str = "for_each";
    fn apply(&self, items: &mut std::vec::Drain<'_, T>, out: &mut Vec<T>) -> Result<(), String> {
        for item in items {
            (self.0)(&item).map_err(|e| e.to_string())?;
            out.push(item);
        }
        Ok(())
    }
}

impl<T: Send + 'static> GearsBuilder<T> {
    /// Runs `for_each_op` on each record for its side effect (e.g. a write to Redis) and
    /// passes the record on unchanged.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let host = gears::testing::MemoryHost::new();
    /// host.set("a", "1");
    /// let out = GearsBuilder::new(KeysReader::new("a"))
    ///     .for_each(|r| {
    ///         gears::context::call(&["SET", &format!("copy:{}", r.key), "x"]).unwrap();
    ///     })
    ///     .map(|r| r.key)
    ///     .run(&host);
    /// assert_eq!(out.results, ["a"]);
    /// assert_eq!(host.get("copy:a").as_deref(), Some("x"));
    /// ```
    pub fn for_each<F>(self, for_each_op: F) -> GearsBuilder<T>
    where
        F: Fn(&T) + Send + Sync + 'static,
    {
        let op = Arc::new(for_each_op);
        self.batch_op(move || ForEach(op.clone()))
    }

    /// Like [`for_each`](Self::for_each) for a fallible side effect: on `Err` the record is
    /// dropped and the error recorded.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let host = gears::testing::MemoryHost::new();
    /// let out = GearsBuilder::new(IterReader::new(|_| ["PING", "NOSUCHCOMMAND"].map(String::from)))
    ///     .try_for_each(|cmd| gears::context::call(&[cmd]).map(|_| ()))
    ///     .run(&host);
    /// assert_eq!(out.results, ["PING"]);
    /// assert!(out.errors.iter().any(|e| e.message.contains("unknown command")));
    /// ```
    pub fn try_for_each<E, F>(self, for_each_op: F) -> GearsBuilder<T>
    where
        E: std::fmt::Display,
        F: Fn(&T) -> Result<(), E> + Send + Sync + 'static,
    {
        let op = Arc::new(for_each_op);
        self.batch_op(move || TryForEach(op.clone()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use crate::prelude::*;
    use crate::testing::MemoryHost;

    #[test]
    fn sees_every_record_and_survives_panics() {
        let host = MemoryHost::new();
        let seen = Arc::new(AtomicUsize::new(0));
        let s = seen.clone();
        let out = GearsBuilder::new(IterReader::new(|_| 0..100u32))
            .for_each(move |x| {
                s.fetch_add(1, Ordering::Relaxed);
                assert!(*x != 50, "fifty");
            })
            .run(&host);
        assert_eq!(seen.load(Ordering::Relaxed), 100);
        assert_eq!(out.results.len(), 99);
        assert_eq!(out.errors.len(), 1);
        let none = GearsBuilder::new(IterReader::new(|_| 0..0u32)).for_each(|_| {});
        assert!(none.run(&host).results.is_empty());
    }
}
