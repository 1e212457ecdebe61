//! Capture: a `sync` registration on the job's keys (the events of
//! [`ALWAYS_CAPTURED`](crate::config::ALWAYS_CAPTURED), plus `hdel`, `expired` if configured).
//! It runs inside the client's command, so the change is in the job's stream (and replicated
//! with the command) before the client gets its reply.
//!
//! The `#` control field is removed from the hash and acted on: `=` upsert (default), `+`
//! keep without syncing, `-` delete the key without syncing, `~` delete key and row; an id
//! after the op (`# =abc`) asks for an ack in the stream `{<key>}abc` (`status done`, written
//! by the writer after the commit; at once for `+` and `-`). Any other `#` value is removed
//! too and the change goes to the dead-letter stream with its error.

use std::sync::Arc;

use gears::context;
use gears::prelude::*;

use super::jobs::{self, Job};
use crate::change::{Change, ControlOp, Op};
use crate::error::SyncError;

/// How long ack streams live (seconds).
pub const ACK_TTL_SECONDS: &str = "3600";

pub(crate) fn job_of(args: &[String], function: &str) -> Result<Arc<Job>, GearsError> {
    match args {
        [name] => jobs::get(name).ok_or_else(|| {
            GearsError::Invalid(format!(
                "{function}: no rgsync job '{name}' (RGSYNC.ADD it)"
            ))
        }),
        _ => Err(GearsError::Invalid(format!(
            "usage: RG.REGISTER {function} ARGS <job> (RGSYNC.ADD does it)"
        ))),
    }
}

/// The capture registration of job `ARGS <job>`.
pub fn registration(args: &[String]) -> Result<Registration, GearsError> {
    let job = job_of(args, jobs::CAPTURE)?;
    // No value read by the reader: the capture reads the mapped fields only.
    GearsBuilder::new(
        KeysReader::new(job.config.key.glob())
            .event_types(job.config.event_types())
            .read_value(false),
    )
    .try_for_each(move |r: &KeyRecord| capture(&job, r))
    .register(ExecutionMode::Sync)
}

/// Appends `status done` (or `status failed error <msg>`) to the ack stream of `key`.
pub(crate) fn write_ack(key: &str, ack: &str, result: Result<(), &str>) -> Result<(), SyncError> {
    let stream = format!("{{{key}}}{ack}");
    match result {
        Ok(()) => context::call(&["XADD", &stream, "*", "status", "done"])?,
        Err(e) => context::call(&["XADD", &stream, "*", "status", "failed", "error", e])?,
    };
    context::call(&["EXPIRE", &stream, ACK_TTL_SECONDS])?;
    Ok(())
}

/// The hashtag of the first slot this server owns: `0` on a standalone server; on a cluster
/// node, from `CLUSTER MYID` and `CLUSTER SLOTS`.
fn find_local_tag() -> Result<String, SyncError> {
    let Ok(me) = context::call(&["CLUSTER", "MYID"]) else {
        return Ok("0".into()); // cluster support disabled
    };
    let me = me.as_str().unwrap_or_default().to_string();
    let mut ranges = Vec::new();
    if let Value::Array(slots) = context::call(&["CLUSTER", "SLOTS"])? {
        for range in slots {
            let Value::Array(r) = range else { continue };
            let owner = match r.get(2) {
                Some(Value::Array(node)) => node.get(2).and_then(Value::as_str).unwrap_or(""),
                _ => "",
            };
            if let (Some(Value::Int(a)), Some(Value::Int(b)), true) =
                (r.first(), r.get(1), owner == me)
            {
                ranges.push((*a as u16, *b as u16));
            }
        }
    }
    (0u32..1_000_000)
        .map(|i| i.to_string())
        .find(|tag| {
            let slot = gears::slot::key_slot(tag.as_bytes());
            ranges.iter().any(|(a, b)| (*a..=*b).contains(&slot))
        })
        .ok_or_else(|| SyncError::Redis("this cluster node owns no slot".into()))
}

fn local_tag(job: &Job) -> Result<&str, SyncError> {
    Ok(match job.tag() {
        Some(t) => t,
        None => job.set_tag(&find_local_tag()?),
    })
}

fn capture(job: &Job, r: &KeyRecord) -> Result<(), SyncError> {
    // Rows take text: a key name that is not UTF-8 is dead-lettered as it is.
    let Some(key) = r.key_str() else {
        return Err(dead_letter_bytes(job, &r.key, "the key name")?);
    };
    // `rename_from`: the key's old name is gone (its row goes; `rename_to` upserts the new one).
    let deleted = matches!(r.event.as_deref(), Some("del" | "expired" | "rename_from"));
    // `#` and the mapped fields, read natively in one go (upserts only).
    let mut values: Vec<Option<String>> = Vec::new();
    let mut ack = None;
    if !deleted {
        // Gone (an HDEL of the last field: its `del` event follows) or not a hash.
        if r.key_type != KeyType::Hash {
            return Ok(());
        }
        let read = context::hash_get(key, &job.read_fields)?;
        values = Vec::with_capacity(read.len());
        for (value, field) in read.into_iter().zip(&job.read_fields) {
            match value.map(RedisBytes::into_string).transpose() {
                Ok(text) => values.push(text),
                Err(_) => {
                    let what = format!("field '{field}' of key '{key}'");
                    return Err(dead_letter_bytes(job, &r.key, &what)?);
                }
            }
        }
        if let Some(control) = values.first().cloned().flatten() {
            context::call(&["HDEL", key, "#"])?;
            let (op, id) = match ControlOp::parse(&control) {
                Ok(parsed) => parsed,
                Err(e) => {
                    // No way to know what was meant: the change is not synced; it goes to
                    // the dead letters with its error (never dropped silently), and the
                    // capture failure is counted.
                    dead_letter_capture(job, key, &control, &values, &e.to_string())?;
                    return Err(e);
                }
            };
            ack = id;
            match op {
                ControlOp::Upsert => {}
                ControlOp::UpdateOnly | ControlOp::DeleteOnly => {
                    if op == ControlOp::DeleteOnly {
                        context::call(&["DEL", key])?;
                    }
                    if let Some(a) = &ack {
                        write_ack(key, a, Ok(()))?;
                    }
                    return Ok(());
                }
                ControlOp::Delete => {
                    context::call(&["DEL", key])?;
                    let change = Change {
                        key: key.to_string(),
                        op: Op::Delete,
                        ack,
                        fields: Vec::new(),
                    };
                    return append(job, &change.to_fields());
                }
            }
        }
    }
    if deleted {
        let change = Change {
            key: key.to_string(),
            op: Op::Delete,
            ack: None,
            fields: Vec::new(),
        };
        return append(job, &change.to_fields());
    }
    // The upsert's entry, straight from the values read (no `Change` built).
    let mut entry = Vec::with_capacity(job.entry_fields.len() + 2);
    Change::upsert_entry(key, ack.as_deref(), present(job, &values), &mut entry);
    append_pairs(job, &entry)
}

/// The stream entry's `(name, value)` of each mapped field the hash has (`values` as read:
/// `#` first, then the mapped fields).
fn present<'a>(
    job: &'a Job,
    values: &'a [Option<String>],
) -> impl Iterator<Item = (&'a str, &'a str)> {
    job.entry_fields
        .iter()
        .zip(values.iter().skip(1))
        .filter_map(|(name, v)| v.as_deref().map(|v| (name.as_str(), v)))
}

/// A change the capture cannot put in the stream (a bad `#` control value): appended to the
/// job's dead-letter stream as `id capture`, `error`, `#` and the upsert's entry (the key and
/// the mapped fields it had), and counted with the job's dead letters.
fn dead_letter_capture(
    job: &Job,
    key: &str,
    control: &str,
    values: &[Option<String>],
    error: &str,
) -> Result<(), SyncError> {
    let tag = local_tag(job)?;
    let mut entry: Vec<(&str, &str)> = vec![("id", "capture"), ("error", error), ("#", control)];
    Change::upsert_entry(key, None, present(job, values), &mut entry);
    context::stream_add(job.dead_letters(tag), &entry)?;
    job.stats().dead_lettered += 1;
    Ok(())
}

/// A key whose name or a mapped field is not UTF-8 (`what`): appended to the job's dead-letter
/// stream as `id capture`, `error` and the key's bytes `k`, unchanged, and counted with the
/// job's dead letters. Returns the capture's error.
fn dead_letter_bytes(job: &Job, key: &[u8], what: &str) -> Result<SyncError, SyncError> {
    let error = SyncError::NotText(what.to_string());
    let message = error.to_string();
    let tag = local_tag(job)?;
    let entry: [(&[u8], &[u8]); 3] = [
        (b"id", b"capture"),
        (b"error", message.as_bytes()),
        (b"k", key),
    ];
    context::stream_add(job.dead_letters(tag), &entry)?;
    job.stats().dead_lettered += 1;
    Ok(error)
}

/// Appends an entry to the job's stream on this shard.
fn append(job: &Job, fields: &[(String, String)]) -> Result<(), SyncError> {
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(f, v)| (f.as_str(), v.as_str()))
        .collect();
    append_pairs(job, &pairs)
}

fn append_pairs(job: &Job, pairs: &[(&str, &str)]) -> Result<(), SyncError> {
    let tag = local_tag(job)?;
    context::stream_add(job.local_stream(tag), pairs)?;
    job.captured
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    job.pending
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}
