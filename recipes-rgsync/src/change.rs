//! A captured change as it sits in the job's stream, and the `#` control field of rgsync.
//!
//! Entry layout (field order): `k` the Redis key, `o` `~` for a delete (no `o`: an upsert, the
//! common case kept small; `o` `=` is read as an upsert too), optionally `a` the ack id, then
//! one `=<field>` per mapped hash field present in the hash.
//!
//! `#` values written by clients with `HSET key … # <op>[<ack id>]`:
//!
//! | `#` | Redis | database |
//! |---|---|---|
//! | `=` (or no `#`) | hash kept, `#` removed | upsert |
//! | `+` | hash kept, `#` removed | nothing |
//! | `-` | key deleted | nothing |
//! | `~` (or `DEL`) | key deleted | delete |
//!
//! ```
//! use recipes_rgsync::change::{Change, ControlOp, Op};
//! assert_eq!(ControlOp::parse("=abc").unwrap(), (ControlOp::Upsert, Some("abc".to_string())));
//! let c = Change { key: "user:1".into(), op: Op::Upsert, ack: None,
//!                  fields: vec![("name".into(), "ann".into())] };
//! let entry = c.to_fields();
//! assert_eq!(Change::from_fields(&entry).unwrap(), c);
//! ```

use crate::error::SyncError;

/// What the writer does with a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Insert or update the row.
    Upsert,
    /// Delete the row.
    Delete,
}

/// The operation requested by a `#` control field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlOp {
    /// `=`: keep the hash, upsert the row.
    Upsert,
    /// `+`: keep the hash, do not replicate.
    UpdateOnly,
    /// `-`: delete the key, do not replicate.
    DeleteOnly,
    /// `~`: delete the key and the row.
    Delete,
}

impl ControlOp {
    /// Parses a `#` value: an op character and an optional ack id.
    pub fn parse(value: &str) -> Result<(ControlOp, Option<String>), SyncError> {
        let mut chars = value.chars();
        let op = match chars.next() {
            Some('=') => ControlOp::Upsert,
            Some('+') => ControlOp::UpdateOnly,
            Some('-') => ControlOp::DeleteOnly,
            Some('~') => ControlOp::Delete,
            _ => {
                return Err(SyncError::Entry(format!(
                    "'#' must start with one of = + - ~, got '{}'",
                    value.chars().take(20).collect::<String>()
                )))
            }
        };
        let id = chars.as_str();
        Ok((op, (!id.is_empty()).then(|| id.to_string())))
    }
}

/// One change of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The Redis key.
    pub key: String,
    /// Upsert or delete.
    pub op: Op,
    /// Ack id: the writer appends `status done|failed` to the stream `{key}<id>`.
    pub ack: Option<String>,
    /// Mapped hash fields present at capture time (upserts only).
    pub fields: Vec<(String, String)>,
}

impl Change {
    /// The stream entry's field/value pairs.
    pub fn to_fields(&self) -> Vec<(String, String)> {
        let mut out = Vec::with_capacity(self.fields.len() + 3); // k, o, a
        out.push(("k".to_string(), self.key.clone()));
        if self.op == Op::Delete {
            out.push(("o".to_string(), "~".to_string()));
        }
        if let Some(a) = &self.ack {
            out.push(("a".to_string(), a.clone()));
        }
        out.extend(
            self.fields
                .iter()
                .map(|(f, v)| (Self::entry_field(f), v.clone())),
        );
        out
    }

    /// The stream entry's name of hash field `field`.
    pub fn entry_field(field: &str) -> String {
        format!("={field}")
    }

    /// The stream entry of an upsert of `key` with `fields` (`(entry name, value)`, names from
    /// [`entry_field`](Self::entry_field)), without building a `Change`: what
    /// [`to_fields`](Self::to_fields) gives for the same change.
    pub fn upsert_entry<'a>(
        key: &'a str,
        ack: Option<&'a str>,
        fields: impl Iterator<Item = (&'a str, &'a str)>,
        out: &mut Vec<(&'a str, &'a str)>,
    ) {
        out.push(("k", key));
        if let Some(a) = ack {
            out.push(("a", a));
        }
        out.extend(fields);
    }

    /// Reads a stream entry written by [`to_fields`](Self::to_fields).
    pub fn from_fields(fields: &[(String, String)]) -> Result<Change, SyncError> {
        let mut key = None;
        let mut op = None;
        let mut ack = None;
        let mut data = Vec::new();
        for (f, v) in fields {
            match f.as_str() {
                "k" => key = Some(v.clone()),
                "o" => {
                    op = Some(match v.as_str() {
                        "=" => Op::Upsert,
                        "~" => Op::Delete,
                        other => return Err(SyncError::Entry(format!("unknown op '{other}'"))),
                    })
                }
                "a" => ack = Some(v.clone()),
                _ => match f.strip_prefix('=') {
                    Some(name) => data.push((name.to_string(), v.clone())),
                    None => return Err(SyncError::Entry(format!("unknown field '{f}'"))),
                },
            }
        }
        Ok(Change {
            key: key.ok_or_else(|| SyncError::Entry("no key".into()))?,
            op: op.unwrap_or(Op::Upsert),
            ack,
            fields: data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_ops() {
        assert_eq!(ControlOp::parse("~").unwrap(), (ControlOp::Delete, None));
        assert_eq!(ControlOp::parse("+x1").unwrap().0, ControlOp::UpdateOnly);
        assert_eq!(ControlOp::parse("-").unwrap().0, ControlOp::DeleteOnly);
        assert!(ControlOp::parse("").is_err());
        assert!(ControlOp::parse("*").is_err());
    }

    #[test]
    fn entries_round_trip_and_reject_garbage() {
        let c = Change {
            key: "k:1".into(),
            op: Op::Delete,
            ack: Some("u1".into()),
            fields: vec![],
        };
        assert_eq!(Change::from_fields(&c.to_fields()).unwrap(), c);
        // a hash field literally named "k" or "o" cannot collide: data fields are prefixed
        let d = Change {
            key: "k:2".into(),
            op: Op::Upsert,
            ack: None,
            fields: vec![("k".into(), "v".into()), ("o".into(), "~".into())],
        };
        assert_eq!(Change::from_fields(&d.to_fields()).unwrap(), d);
        // the capture's allocation-free upsert entry is the same entry
        for ack in [None, Some("a7")] {
            let names: Vec<String> = ["k", "o"].iter().map(|f| Change::entry_field(f)).collect();
            let mut fast = Vec::new();
            Change::upsert_entry(
                "k:2",
                ack,
                names.iter().map(String::as_str).zip(["v", "~"]),
                &mut fast,
            );
            let slow = Change {
                ack: ack.map(str::to_string),
                ..d.clone()
            }
            .to_fields();
            let slow: Vec<(&str, &str)> =
                slow.iter().map(|(f, v)| (f.as_str(), v.as_str())).collect();
            assert_eq!(fast, slow);
        }
        assert!(Change::from_fields(&[("x".into(), "1".into())]).is_err());
        // No `o`: an upsert (the capture's entries); `o` = `=` still reads (older streams).
        let bare = Change::from_fields(&[("k".into(), "1".into())]).unwrap();
        assert_eq!((bare.op, bare.fields.len()), (Op::Upsert, 0));
        let older = Change::from_fields(&[
            ("k".into(), "1".into()),
            ("o".into(), "=".into()),
            ("=n".into(), "v".into()),
        ])
        .unwrap();
        assert_eq!(older.op, Op::Upsert);
        assert_eq!(older.fields, [("n".to_string(), "v".to_string())]);
        assert!(Change::from_fields(&[("o".into(), "=".into())]).is_err()); // no key
        assert!(
            Change::from_fields(&[("k".into(), "1".into()), ("o".into(), "?".into())]).is_err()
        );
    }
}
