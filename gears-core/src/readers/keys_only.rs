use super::scan::KeyPages;
use super::{Once, Reader, ReaderCx, ReaderRun};
use crate::bytes::RedisBytes;
use crate::error::GearsError;

/// Key names matching a glob pattern, without values (RedisGears 1.x `KeysOnlyReader`), as
/// bytes.
///
/// ```
/// # use gears_core as gears;
/// use gears::prelude::*;
/// let out = gears::testing::example(|host| {
///     host.set("a:1", "x");
///     host.set("b:1", "y");
///     GearsBuilder::new(KeysOnlyReader::new("a:*"))
/// });
/// assert_eq!(out, ["a:1"]);
/// ```
#[derive(Debug, Clone)]
pub struct KeysOnlyReader {
    pattern: String,
    no_scan: bool,
    page: usize,
}

impl KeysOnlyReader {
    /// Key names matching `pattern`.
    pub fn new(pattern: impl Into<String>) -> Self {
        Self {
            pattern: pattern.into(),
            no_scan: false,
            page: 1000,
        }
    }

    /// Treat the pattern as one exact key name (yields it only if it exists).
    pub fn no_scan(mut self, yes: bool) -> Self {
        self.no_scan = yes;
        self
    }

    /// Keys per scan page (default 1000, 1.x `count`).
    pub fn page_size(mut self, n: usize) -> Self {
        self.page = n.max(1);
        self
    }
}

impl Reader for KeysOnlyReader {
    type Record = RedisBytes;

    fn name(&self) -> &'static str {
        "KeysOnlyReader"
    }

    fn open(&self, cx: &ReaderCx<'_>) -> Result<Box<dyn ReaderRun<RedisBytes>>, GearsError> {
        if self.no_scan {
            let key = RedisBytes::from(self.pattern.as_str());
            let read = cx.host.read_keys(std::slice::from_ref(&key), false)?;
            let exists = read
                .first()
                .is_some_and(|(t, _)| *t != crate::host::KeyType::Empty);
            let keys = if exists { vec![key] } else { vec![] };
            return Ok(Box::new(Once(Some(keys.into_iter()))));
        }
        Ok(Box::new(KeyPages::new(
            cx.host,
            &self.pattern,
            None,
            self.page,
            |(key, _, _)| key,
        )))
    }
}
