//! The Redis commands [`MemoryHost`] understands (`Host::call`), with Redis's replies and
//! errors.

use std::collections::{BTreeMap, BTreeSet};

use super::keyspace::{arity, wrong_type, Stored};
use super::MemoryHost;
use crate::bytes::RedisBytes;
use crate::error::HostError;
use crate::host::StreamId;
use crate::value::Value;

/// An argument that must be a number (or an id), as text.
fn text<'a>(arg: &'a [u8], error: &str) -> Result<&'a str, HostError> {
    std::str::from_utf8(arg).map_err(|_| HostError::new(error))
}

const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";

impl MemoryHost {
    /// Runs one command of the subset [`MemoryHost`] understands; arguments are any bytes.
    pub(super) fn execute(&self, args: &[&[u8]]) -> Result<Value, HostError> {
        let Some(first) = args.first() else {
            return Err(HostError::new("ERR empty command"));
        };
        let cmd = String::from_utf8_lossy(first);
        let name = cmd.to_ascii_uppercase();
        const KNOWN: &[&str] = &[
            "PING", "ECHO", "DBSIZE", "GET", "SET", "DEL", "EXISTS", "TYPE", "INCR", "INCRBY",
            "HSET", "HGET", "HMGET", "HGETALL", "HLEN", "HDEL", "RPUSH", "LPUSH", "SADD", "ZADD",
            "XADD", "XLEN",
        ];
        if !KNOWN.contains(&name.as_str()) {
            return Err(HostError::new(format!(
                "ERR unknown command '{cmd}', with args beginning with: "
            )));
        }
        let keyed = !matches!(name.as_str(), "PING" | "DBSIZE" | "ECHO");
        if keyed {
            let key = args.get(1).ok_or_else(|| arity(&cmd))?;
            self.check_local(key)?;
        }
        let mut ks = self.keys();
        let ok = || Value::Status("OK".into());
        let int = |n: usize| Value::Int(n as i64);
        Ok(match (name.as_str(), args.len()) {
            ("PING", _) => Value::Status("PONG".into()),
            ("ECHO", 2) => Value::Bulk(args[1].to_vec()),
            ("DBSIZE", 1) => int(ks.index.len()),
            ("GET", 2) => match ks.get(args[1]) {
                None => Value::Nil,
                Some(Stored::String(s)) => s.clone().into(),
                Some(_) => return Err(wrong_type()),
            },
            ("SET", 3) => {
                ks.put(args[1], Stored::String(args[2].into()));
                ok()
            }
            ("DEL", n) if n >= 2 => int(args[1..].iter().filter(|k| ks.remove(k)).count()),
            ("EXISTS", n) if n >= 2 => {
                int(args[1..].iter().filter(|k| ks.get(k).is_some()).count())
            }
            ("TYPE", 2) => Value::Status(
                ks.get(args[1])
                    .map_or("none", |v| v.key_type().name())
                    .into(),
            ),
            ("INCR", 2) | ("INCRBY", 3) => {
                let by: i64 = if args.len() == 3 {
                    text(args[2], NOT_AN_INTEGER)?
                        .parse()
                        .map_err(|_| HostError::new(NOT_AN_INTEGER))?
                } else {
                    1
                };
                let current = match ks.get(args[1]) {
                    None => 0,
                    Some(Stored::String(s)) => text(s, NOT_AN_INTEGER)?
                        .parse::<i64>()
                        .map_err(|_| HostError::new(NOT_AN_INTEGER))?,
                    Some(_) => return Err(wrong_type()),
                };
                let next = current
                    .checked_add(by)
                    .ok_or_else(|| HostError::new("ERR increment or decrement would overflow"))?;
                ks.put(args[1], Stored::String(next.to_string().into()));
                Value::Int(next)
            }
            ("HSET", n) if n >= 4 && n % 2 == 0 => {
                let h = ks.entry(
                    args[1],
                    || Stored::Hash(BTreeMap::new()),
                    |v| matches!(v, Stored::Hash(_)),
                )?;
                let Stored::Hash(h) = h else { unreachable!() };
                let mut added = 0;
                for pair in args[2..].chunks(2) {
                    if h.insert(pair[0].into(), pair[1].into()).is_none() {
                        added += 1;
                    }
                }
                int(added)
            }
            ("HGET", 3) => match ks.get(args[1]) {
                None => Value::Nil,
                Some(Stored::Hash(h)) => h.get(args[2]).map_or(Value::Nil, |v| v.clone().into()),
                Some(_) => return Err(wrong_type()),
            },
            ("HMGET", n) if n >= 3 => match ks.get(args[1]) {
                None => Value::Array(vec![Value::Nil; n - 2]),
                Some(Stored::Hash(h)) => Value::Array(
                    args[2..]
                        .iter()
                        .map(|f| h.get(*f).map_or(Value::Nil, |v| v.clone().into()))
                        .collect(),
                ),
                Some(_) => return Err(wrong_type()),
            },
            ("HGETALL", 2) => match ks.get(args[1]) {
                None => Value::Array(vec![]),
                Some(Stored::Hash(h)) => Value::Array(
                    h.iter()
                        .flat_map(|(k, v)| [k.clone().into(), v.clone().into()])
                        .collect(),
                ),
                Some(_) => return Err(wrong_type()),
            },
            ("HLEN", 2) => match ks.get(args[1]) {
                None => int(0),
                Some(Stored::Hash(h)) => int(h.len()),
                Some(_) => return Err(wrong_type()),
            },
            ("HDEL", n) if n >= 3 => {
                let removed = match ks.get_mut(args[1]) {
                    None => 0,
                    Some(Stored::Hash(h)) => {
                        args[2..].iter().filter(|f| h.remove(**f).is_some()).count()
                    }
                    Some(_) => return Err(wrong_type()),
                };
                if matches!(ks.get(args[1]), Some(Stored::Hash(h)) if h.is_empty()) {
                    ks.remove(args[1]);
                }
                int(removed)
            }
            ("RPUSH", n) | ("LPUSH", n) if n >= 3 => {
                let l = ks.entry(
                    args[1],
                    || Stored::List(Vec::new()),
                    |v| matches!(v, Stored::List(_)),
                )?;
                let Stored::List(l) = l else { unreachable!() };
                for item in &args[2..] {
                    if name == "RPUSH" {
                        l.push((*item).into());
                    } else {
                        l.insert(0, (*item).into());
                    }
                }
                int(l.len())
            }
            ("SADD", n) if n >= 3 => {
                let s = ks.entry(
                    args[1],
                    || Stored::Set(BTreeSet::new()),
                    |v| matches!(v, Stored::Set(_)),
                )?;
                let Stored::Set(s) = s else { unreachable!() };
                int(args[2..].iter().filter(|m| s.insert((**m).into())).count())
            }
            ("ZADD", n) if n >= 4 && n % 2 == 0 => {
                let mut pairs = Vec::new();
                for pair in args[2..].chunks(2) {
                    const NOT_A_FLOAT: &str = "ERR value is not a valid float";
                    let score: f64 = text(pair[0], NOT_A_FLOAT)?
                        .parse()
                        .map_err(|_| HostError::new(NOT_A_FLOAT))?;
                    pairs.push((RedisBytes::from(pair[1]), score));
                }
                let z = ks.entry(
                    args[1],
                    || Stored::ZSet(Vec::new()),
                    |v| matches!(v, Stored::ZSet(_)),
                )?;
                let Stored::ZSet(z) = z else { unreachable!() };
                let mut added = 0;
                for (member, score) in pairs {
                    match z.iter_mut().find(|(m, _)| *m == member) {
                        Some(e) => e.1 = score,
                        None => {
                            z.push((member, score));
                            added += 1;
                        }
                    }
                }
                z.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
                int(added)
            }
            ("XADD", n) if n >= 5 && n % 2 == 1 => {
                let id = if args[2] == b"*" {
                    ks.next_stream_id()
                } else {
                    const BAD_ID: &str =
                        "ERR Invalid stream ID specified as stream command argument";
                    let id = StreamId::parse(text(args[2], BAD_ID)?)
                        .ok_or_else(|| HostError::new(BAD_ID))?;
                    if id <= ks.last_stream_id {
                        return Err(HostError::new("ERR The ID specified in XADD is equal or smaller than the target stream top item"));
                    }
                    ks.last_stream_id = id;
                    id
                };
                let fields = args[3..]
                    .chunks(2)
                    .map(|p| (p[0].into(), p[1].into()))
                    .collect();
                let s = ks.entry(
                    args[1],
                    || Stored::Stream(BTreeMap::new()),
                    |v| matches!(v, Stored::Stream(_)),
                )?;
                let Stored::Stream(s) = s else { unreachable!() };
                s.insert(id, fields);
                Value::bulk(id.to_string())
            }
            ("XLEN", 2) => match ks.get(args[1]) {
                None => int(0),
                Some(Stored::Stream(s)) => int(s.len()),
                Some(_) => return Err(wrong_type()),
            },
            (
                "GET" | "SET" | "TYPE" | "INCR" | "INCRBY" | "HSET" | "HGET" | "HGETALL" | "HLEN"
                | "HDEL" | "DEL" | "EXISTS" | "RPUSH" | "LPUSH" | "SADD" | "ZADD" | "XADD" | "XLEN"
                | "ECHO" | "DBSIZE",
                _,
            ) => return Err(arity(&cmd)),
            _ => {
                return Err(HostError::new(format!(
                    "ERR unknown command '{cmd}', with args beginning with: "
                )))
            }
        })
    }
}
