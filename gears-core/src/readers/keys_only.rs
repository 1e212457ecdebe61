use super::{Once, Reader, ReaderCx, ReaderRun};
use crate::error::GearsError;
use crate::host::{Host, KeyScan};

/// Key names matching a glob pattern, without values (RedisGears 1.x `KeysOnlyReader`).
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

struct KeysOnlyRun {
    host: std::sync::Arc<dyn Host>,
    /// The host's native scan, when it has one.
    native: Option<Box<dyn KeyScan>>,
    pattern: String,
    page: usize,
    cursor: u64,
    done: bool,
}

impl ReaderRun<String> for KeysOnlyRun {
    fn next_batch(&mut self, out: &mut Vec<String>, max: usize) -> Result<bool, GearsError> {
        let before = out.len();
        let mut scanned = Vec::new();
        while !self.done && out.len() - before < max {
            if let Some(native) = &mut self.native {
                self.done = !native.next_page(self.page, &mut scanned)?;
                out.extend(scanned.drain(..).map(|(key, _, _)| key));
                continue;
            }
            let page = self.host.scan(&self.pattern, self.cursor, self.page)?;
            out.extend(page.keys);
            self.cursor = page.cursor;
            self.done = page.cursor == 0;
        }
        Ok(!self.done)
    }
}

impl Reader for KeysOnlyReader {
    type Record = String;

    fn name(&self) -> &'static str {
        "KeysOnlyReader"
    }

    fn open(&self, cx: &ReaderCx<'_>) -> Result<Box<dyn ReaderRun<String>>, GearsError> {
        if self.no_scan {
            let read = cx
                .host
                .read_keys(std::slice::from_ref(&self.pattern), false)?;
            let exists = read
                .first()
                .is_some_and(|(t, _)| *t != crate::host::KeyType::Empty);
            let keys = if exists {
                vec![self.pattern.clone()]
            } else {
                vec![]
            };
            return Ok(Box::new(Once(Some(keys.into_iter()))));
        }
        Ok(Box::new(KeysOnlyRun {
            native: cx.host.key_scan(&self.pattern, false),
            host: cx.host.clone(),
            pattern: self.pattern.clone(),
            page: self.page,
            cursor: 0,
            done: false,
        }))
    }
}
