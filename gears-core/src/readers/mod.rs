//! Readers: where a flow's records come from. Each shard opens the reader against its own
//! [`Host`], in batch mode (scan/read) or for one event (registrations).

mod command;
mod iter;
mod keys;
mod keys_only;
mod scan;
mod shards_id;
mod stream;

use std::sync::Arc;

pub use crate::event::Event;
pub use command::CommandReader;
pub use iter::{IterReader, SliceReader};
pub use keys::{KeyRecord, KeysReader};
pub use keys_only::KeysOnlyReader;
pub use shards_id::ShardsIdReader;
pub use stream::{StreamReader, StreamRecord};

use crate::error::GearsError;
use crate::host::Host;
use crate::plumbing::pull::{Node, Pull, StageCx, StageInput};

/// What a reader sees when it is opened on a shard.
pub struct ReaderCx<'a> {
    /// The shard's host.
    pub host: &'a Arc<dyn Host>,
    /// The event being handled, for triggered executions; `None` for batch runs.
    pub event: Option<&'a Event>,
}

/// A source of records.
pub trait Reader: Send + Sync + 'static {
    /// The record type the reader yields.
    type Record: Send + 'static;

    /// The reader's name as RedisGears 1.x calls it (`KeysReader`, `StreamReader`, ...).
    fn name(&self) -> &'static str;

    /// Opens the reader on one shard.
    fn open(&self, cx: &ReaderCx<'_>) -> Result<Box<dyn ReaderRun<Self::Record>>, GearsError>;

    /// [`open`](Self::open), given the event to keep: a reader whose record carries parts of
    /// the event can move them instead of copying (the per-event path of registrations). By
    /// default, `open` with the event borrowed.
    fn open_owned(
        &self,
        host: &Arc<dyn Host>,
        event: Option<Event>,
    ) -> Result<Box<dyn ReaderRun<Self::Record>>, GearsError> {
        self.open(&ReaderCx {
            host,
            event: event.as_ref(),
        })
    }

    /// The one record of `event` when it is made from the event alone, with nothing to read
    /// and no run to open (the per-event path of `sync` registrations); otherwise the event is
    /// given back and the reader is opened. By default, always given back.
    fn event_record(&self, event: Event) -> Result<Self::Record, Event> {
        Err(event)
    }

    /// What events can fire a registration of this reader (`None`: batch only).
    fn trigger(&self) -> Option<crate::trigger::TriggerSpec> {
        None
    }
}

/// An opened reader.
pub trait ReaderRun<T>: Send {
    /// Appends at most `max` records to `out`; `Ok(false)` once nothing is left.
    fn next_batch(&mut self, out: &mut Vec<T>, max: usize) -> Result<bool, GearsError>;
}

/// A reader that yields a fixed list once (used for events and small sources).
pub(crate) struct Once<T>(pub(crate) Option<std::vec::IntoIter<T>>);

impl<T: Send> ReaderRun<T> for Once<T> {
    fn next_batch(&mut self, out: &mut Vec<T>, max: usize) -> Result<bool, GearsError> {
        let Some(it) = self.0.as_mut() else {
            return Ok(false);
        };
        out.extend(it.by_ref().take(max));
        if it.len() == 0 {
            self.0 = None;
            return Ok(false);
        }
        Ok(true)
    }
}

/// A reader run yielding one record (the record of an event): no list to allocate.
pub(crate) struct OneRecord<T>(pub(crate) Option<T>);

impl<T: Send> ReaderRun<T> for OneRecord<T> {
    fn next_batch(&mut self, out: &mut Vec<T>, _max: usize) -> Result<bool, GearsError> {
        out.extend(self.0.take());
        Ok(false)
    }
}

/// The first node of stage 0: the reader.
pub(crate) struct ReaderNode<R> {
    pub(crate) reader: Arc<R>,
    pub(crate) step: usize,
}

struct ReaderPull<T> {
    run: Box<dyn ReaderRun<T>>,
    step: usize,
}

impl<R: Reader> Node<R::Record> for ReaderNode<R> {
    fn open_one(&self, input: &mut StageInput) -> Option<R::Record> {
        let event = input.event.take()?;
        match self.reader.event_record(event) {
            Ok(record) => Some(record),
            Err(event) => {
                input.event = Some(event);
                None
            }
        }
    }

    fn open(&self, input: &mut StageInput) -> Result<Box<dyn Pull<R::Record>>, GearsError> {
        let run = self.reader.open_owned(&input.host, input.event.take())?;
        Ok(Box::new(ReaderPull {
            run,
            step: self.step,
        }))
    }
}

impl<T: Send> Pull<T> for ReaderPull<T> {
    fn pull(&mut self, cx: &mut StageCx<'_>, out: &mut Vec<T>) -> Result<bool, GearsError> {
        let clock = cx.clock();
        let before = out.len();
        let more = self.run.next_batch(out, cx.batch)?;
        cx.book(self.step, out.len() - before, clock);
        Ok(more)
    }
}
