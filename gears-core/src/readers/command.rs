use super::{OneRecord, Reader, ReaderCx, ReaderRun};
use crate::error::GearsError;
use crate::event::Event;

/// Event-only reader fired by `RG.TRIGGER <trigger> [arg ...]`; the record is
/// `[trigger, arg1, ...]`.
///
/// ```
/// # use gears_core as gears;
/// use gears::prelude::*;
/// use gears::event::Event;
/// let host = gears::testing::MemoryHost::new();
/// let flow = GearsBuilder::new(CommandReader::new("hello")).map(|args| args.join(" "));
/// let event = Event::Command { args: vec!["hello".into(), "world".into()] };
/// assert_eq!(flow.build().run_event(&host, event).results, ["hello world"]);
/// ```
#[derive(Debug, Clone)]
pub struct CommandReader {
    trigger: String,
    in_order: bool,
}

impl CommandReader {
    /// A reader for `RG.TRIGGER <trigger> ...`.
    pub fn new(trigger: impl Into<String>) -> Self {
        Self {
            trigger: trigger.into(),
            in_order: false,
        }
    }

    /// Run executions strictly in arrival order (1.x `inorder`).
    pub fn in_order(mut self, yes: bool) -> Self {
        self.in_order = yes;
        self
    }

    /// The trigger name.
    pub fn trigger(&self) -> &str {
        &self.trigger
    }

    /// Whether executions run in arrival order.
    pub fn is_in_order(&self) -> bool {
        self.in_order
    }
}

impl Reader for CommandReader {
    type Record = Vec<String>;

    fn name(&self) -> &'static str {
        "CommandReader"
    }

    fn trigger(&self) -> Option<crate::trigger::TriggerSpec> {
        Some(crate::trigger::TriggerSpec::Command {
            trigger: self.trigger.clone(),
            in_order: self.in_order,
        })
    }

    fn open(&self, cx: &ReaderCx<'_>) -> Result<Box<dyn ReaderRun<Vec<String>>>, GearsError> {
        match cx.event {
            Some(Event::Command { args }) => Ok(Box::new(OneRecord(Some(args.clone())))),
            Some(_) => Err(GearsError::Reader {
                reader: "CommandReader",
                message: "fired by a non-command event".into(),
            }),
            None => Err(GearsError::Reader {
                reader: "CommandReader",
                message: "is event-only: register it and call RG.TRIGGER".into(),
            }),
        }
    }
}
