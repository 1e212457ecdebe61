//! Example Gears module with registrations, registered on every master when it loads:
//!
//! - `audit_trail` (`sync`): every `HSET` on `user:*` appends `{key, event}` to the stream
//!   `audit` inside the client's own command, before its reply;
//! - `count_events` (`async_local`): every write to `event:*` increments `events:seen` on a
//!   background worker, in order;
//! - `hello` / `sum` (`RG.TRIGGER hello <name>`, `RG.TRIGGER sum <n> ...`): commands made of
//!   flows, `sync` and `async_local`; `append` (`RG.TRIGGER append <stream> <field> <value>
//!   ...`): an `XADD` made of a flow.

use gears::context;
use gears::prelude::*;

/// Appends each `user:*` HSET to the `audit` stream, atomically with the write.
#[gears::register]
pub fn audit_trail() -> Result<Registration, GearsError> {
    GearsBuilder::new(
        KeysReader::new("user:*")
            .event_types(["hset"])
            .read_value(false),
    )
    .try_for_each(|r| {
        let event = r.event.as_deref().unwrap_or("?");
        // Appended natively inside the write (replicated as `XADD audit <id> …`).
        let entry = [("key", r.key.as_bytes()), ("event", event.as_bytes())];
        context::stream_add("audit", &entry).map(|_| ())
    })
    .register(ExecutionMode::Sync)
}

/// Counts writes to `event:*` in `events:seen`, in the background.
#[gears::register]
pub fn count_events() -> Result<Registration, GearsError> {
    GearsBuilder::new(KeysReader::new("event:*").read_value(false))
        .try_for_each(|_| context::call(&["INCR", "events:seen"]).map(|_| ()))
        .register(ExecutionMode::AsyncLocal)
}

/// `RG.TRIGGER hello <name>` → `hello <name>`.
#[gears::register]
pub fn hello() -> Result<Registration, GearsError> {
    GearsBuilder::new(CommandReader::new("hello"))
        .try_map(|args| match args.as_slice() {
            [_, name] => Ok(format!("hello {name}")),
            _ => Err("usage: RG.TRIGGER hello <name>"),
        })
        .register(ExecutionMode::Sync)
}

/// `RG.TRIGGER append <stream> <field> <value> ...` → the new entry's id: an `XADD` made of a
/// flow, appended natively inside the command (`sync`).
#[gears::register]
pub fn append() -> Result<Registration, GearsError> {
    GearsBuilder::new(CommandReader::new("append"))
        .try_map(|args| match args.as_slice() {
            [_, stream, pairs @ ..] if !pairs.is_empty() && pairs.len() % 2 == 0 => {
                let pairs: Vec<(&str, &str)> = pairs
                    .chunks(2)
                    .map(|p| (p[0].as_str(), p[1].as_str()))
                    .collect();
                context::stream_add(stream, &pairs)
            }
            _ => Err(GearsError::Invalid(
                "usage: RG.TRIGGER append <stream> <field> <value> ...".into(),
            )),
        })
        .register(ExecutionMode::Sync)
}

/// `RG.TRIGGER sum <n> ...` → the sum, computed on a worker (`async_local`).
#[gears::register]
pub fn sum() -> Result<Registration, GearsError> {
    GearsBuilder::new(CommandReader::new("sum"))
        .try_map(|args| {
            args[1..]
                .iter()
                .map(|a| a.parse::<i64>().map_err(|_| format!("not a number: '{a}'")))
                .sum::<Result<i64, String>>()
        })
        .register(ExecutionMode::AsyncLocal)
}

/// Copies the name of every key written matching `ARGS <pattern>` into the list
/// `copies:<pattern>`, byte for byte: instantiate it at runtime with
/// `RG.REGISTER copy_writes ARGS <pattern>`.
#[gears::register]
pub fn copy_writes(args: &[String]) -> Result<Registration, GearsError> {
    let [pattern] = args else {
        return Err(GearsError::Invalid(
            "usage: RG.REGISTER copy_writes ARGS <pattern>".into(),
        ));
    };
    let list = format!("copies:{pattern}");
    GearsBuilder::new(KeysReader::new(pattern.clone()).read_value(false))
        .try_for_each(move |r| {
            context::call_bytes(&[b"RPUSH", list.as_bytes(), &r.key]).map(|_| ())
        })
        .register(ExecutionMode::AsyncLocal)
}

/// Sums the `value` field of entries added to `readings:*` streams into `total:<stream>`,
/// three entries per execution (or whatever is waiting after 100 ms).
#[gears::register]
pub fn stream_totals() -> Result<Registration, GearsError> {
    GearsBuilder::new(
        StreamReader::new("readings:*")
            .batch(3)
            .duration(std::time::Duration::from_millis(100)),
    )
    .try_for_each(|e| {
        let value = e
            .field_bytes(b"value")
            .map_or(b"0".as_slice(), |v| v.as_bytes());
        let total = [b"total:", e.key.as_bytes()].concat();
        context::call_bytes(&[b"INCRBY", &total, value]).map(|_| ())
    })
    .register(ExecutionMode::AsyncLocal)
}

/// A second registration on the same streams, with its own consumer group: it sees every
/// entry too (1.x's shared group split them).
#[gears::register]
pub fn stream_seen() -> Result<Registration, GearsError> {
    GearsBuilder::new(StreamReader::new("readings:*"))
        .try_for_each(|_| context::call(&["INCR", "seen:readings"]).map(|_| ()))
        .register(ExecutionMode::AsyncLocal)
}

/// Adds the numeric `n` field of a stream entry to the counter `total`.
fn add_n(entry: &StreamRecord, total: &str) -> Result<(), String> {
    let n: i64 = entry
        .field("n")
        .unwrap_or("")
        .parse()
        .map_err(|_| format!("bad n in {}", entry.id))?;
    context::call(&["INCRBY", total, &n.to_string()])
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// `tasks:*` entries must carry a numeric `n`; failures are reported, the rest flows
/// (policy `continue`).
#[gears::register]
pub fn tasks() -> Result<Registration, GearsError> {
    GearsBuilder::new(StreamReader::new("tasks:*"))
        .try_for_each(|e| add_n(e, "tasks:done"))
        .register(ExecutionMode::AsyncLocal)
}

/// Like `tasks` on `jobs:*`, but the first failure stops the registration (policy `abort`).
#[gears::register]
pub fn jobs() -> Result<Registration, GearsError> {
    GearsBuilder::new(StreamReader::new("jobs:*").on_failure(FailurePolicy::Abort))
        .try_for_each(|e| add_n(e, "jobs:done"))
        .register(ExecutionMode::AsyncLocal)
}

/// Counts the entries of the `audit` stream (written by the `sync` audit trail) in
/// `audit:seen`.
#[gears::register]
pub fn audit_seen() -> Result<Registration, GearsError> {
    GearsBuilder::new(StreamReader::new("audit"))
        .try_for_each(|_| context::call(&["INCR", "audit:seen"]).map(|_| ()))
        .register(ExecutionMode::AsyncLocal)
}

/// Logs every value written to `snap:*` into the list `snap:log` (its bytes as they are), in
/// the background but with the value as it was at the write (a snapshot), not as it is when
/// the execution runs.
#[gears::register]
pub fn snapshots() -> Result<Registration, GearsError> {
    GearsBuilder::new(
        KeysReader::new("snap:*")
            .event_types(["set"])
            .snapshot(true),
    )
    .try_for_each(|r| {
        let value = r
            .string_bytes()
            .map_or(b"(gone)".as_slice(), |v| v.as_bytes());
        context::call_bytes(&[b"RPUSH", b"snap:log", value]).map(|_| ())
    })
    .register(ExecutionMode::AsyncLocal)
}

gears::export! { name: "triggers" }
