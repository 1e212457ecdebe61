//! Paging through the keys that match a pattern: with the host's native scan when it has
//! one, by cursor pages otherwise. The batch mode of `KeysReader` and `KeysOnlyReader`.

use std::sync::Arc;

use super::ReaderRun;
use crate::error::GearsError;
use crate::host::{Host, KeyScan, KeyType, ScannedKey};

/// A scan of one shard's keys in progress, making a record of each key with `make`.
pub(super) struct KeyPages<F> {
    host: Arc<dyn Host>,
    /// The host's native scan, when it has one.
    native: Option<Box<dyn KeyScan>>,
    pattern: String,
    /// `Some(read_value)`: read each key's type (and value); `None`: key names only.
    read: Option<bool>,
    page: usize,
    cursor: u64,
    done: bool,
    make: F,
}

impl<F> KeyPages<F> {
    pub(super) fn new(
        host: &Arc<dyn Host>,
        pattern: &str,
        read: Option<bool>,
        page: usize,
        make: F,
    ) -> Self {
        Self {
            native: host.key_scan(pattern, read.unwrap_or(false)),
            host: host.clone(),
            pattern: pattern.to_string(),
            read,
            page,
            cursor: 0,
            done: false,
            make,
        }
    }
}

impl<T, F: Fn(ScannedKey) -> T + Send> ReaderRun<T> for KeyPages<F> {
    fn next_batch(&mut self, out: &mut Vec<T>, max: usize) -> Result<bool, GearsError> {
        let before = out.len();
        let mut page = Vec::new();
        while !self.done && out.len() - before < max {
            if let Some(native) = &mut self.native {
                self.done = !native.next_page(self.page, &mut page)?;
            } else {
                let cursor = match self.read {
                    Some(read_value) => {
                        let (cursor, entries) = self.host.scan_read(
                            &self.pattern,
                            self.cursor,
                            self.page,
                            read_value,
                        )?;
                        page = entries;
                        cursor
                    }
                    None => {
                        let found = self.host.scan(&self.pattern, self.cursor, self.page)?;
                        page.extend(
                            found
                                .keys
                                .into_iter()
                                .map(|key| (key, KeyType::Empty, None)),
                        );
                        found.cursor
                    }
                };
                self.cursor = cursor;
                self.done = cursor == 0;
            }
            out.extend(page.drain(..).map(&self.make));
        }
        Ok(!self.done)
    }
}
