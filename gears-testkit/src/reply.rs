//! Sending commands and rendering replies compactly for assertions.

use std::fmt::Debug;

use redis::{Connection, RedisResult, ToRedisArgs, Value};

/// A reply as text: arrays and sets as `[a,b]`, maps as `{k:v}`, strings bare, nil as `nil`,
/// `OK` as `OK`.
///
/// ```
/// use redis::Value;
/// let v = Value::Array(vec![Value::Int(1), Value::BulkString(b"a".to_vec()), Value::Nil]);
/// assert_eq!(gears_testkit::show(&v), "[1,a,nil]");
/// ```
pub fn show(v: &Value) -> String {
    match v {
        Value::Nil => "nil".into(),
        Value::Int(i) => i.to_string(),
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Okay => "OK".into(),
        Value::Double(d) => d.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Array(items) | Value::Set(items) => {
            format!("[{}]", items.iter().map(show).collect::<Vec<_>>().join(","))
        }
        Value::Map(pairs) => format!(
            "{{{}}}",
            pairs
                .iter()
                .map(|(k, v)| format!("{}:{}", show(k), show(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => format!("{other:?}"),
    }
}

/// The command `args[0]` with the rest of `args` as its arguments.
pub fn command<A: ToRedisArgs>(args: &[A]) -> redis::Cmd {
    let (name, rest) = args.split_first().expect("a command name");
    let mut cmd = redis::Cmd::new();
    cmd.arg(name);
    for a in rest {
        cmd.arg(a);
    }
    cmd
}

/// Sends `args` and returns the reply or the error.
pub fn query<A: ToRedisArgs>(con: &mut Connection, args: &[A]) -> RedisResult<Value> {
    command(args).query(con)
}

/// Sends `args` and returns the reply; panics, naming the command, on an error reply.
pub fn ok<A: ToRedisArgs + Debug>(con: &mut Connection, args: &[A]) -> Value {
    query(con, args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Sends `args`, which must be refused: the error as text (panics if the command succeeds).
pub fn error<A: ToRedisArgs + Debug>(con: &mut Connection, args: &[A]) -> String {
    match query(con, args) {
        Ok(v) => panic!("{args:?} succeeded: {}", show(&v)),
        Err(e) => e.to_string(),
    }
}

/// Sends `args` and renders the reply with [`show`], or an error reply as `ERR(<message>)`.
pub fn run(con: &mut Connection, args: &[&str]) -> String {
    match query(con, args) {
        Ok(v) => show(&v),
        Err(e) => format!(
            "ERR({})",
            e.detail()
                .map(str::to_string)
                .unwrap_or_else(|| e.to_string())
        ),
    }
}

/// Runs each command in turn and asserts its reply as [`run`] renders it; a mismatch names
/// the command. For tables of calls and the exact replies they must get.
pub fn assert_replies(con: &mut Connection, cases: &[(&[&str], &str)]) {
    for (args, want) in cases {
        assert_eq!(run(con, args), *want, "reply to {args:?}");
    }
}

/// One stream entry as Redis has it: the id and the field/value pairs, bytes unchanged.
pub type RawEntry = (String, Vec<(Vec<u8>, Vec<u8>)>);

/// Every entry of stream `key` (`XRANGE key - +`), bytes unchanged; panics on an error reply.
pub fn stream_entries(con: &mut Connection, key: impl ToRedisArgs) -> Vec<RawEntry> {
    redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query(con)
        .expect("XRANGE")
}
