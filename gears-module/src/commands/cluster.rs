//! `RG.INFOCLUSTER`, `RG.REFRESHCLUSTER` and the cluster test hook `RG.INNERTESTMSG`.

use std::sync::atomic::Ordering;

use redis_module::{Context, RedisError, RedisResult, RedisValue};

use crate::runtime::cluster::{cluster, Cluster};

/// 1.x's shape: `MyId`, `MyRunId`, then one entry per shard; then Gears' message counters.
pub(crate) fn info(ctx: &Context, c: &Cluster) -> RedisValue {
    let view = c.refresh(ctx);
    let shards = view
        .shards
        .iter()
        .map(|s| {
            let run_id = if s.id == c.my_id {
                Some(c.node.run_id())
            } else {
                c.peer_run_id(&s.id)
            };
            RedisValue::Array(vec![
                "id".into(),
                s.id.as_str().into(),
                "ip".into(),
                s.ip.as_str().into(),
                "port".into(),
                RedisValue::Integer(s.port),
                "unixSocket".into(),
                "None".into(),
                "runid".into(),
                run_id.map_or(String::new(), |r| format!("{r:016x}")).into(),
                "minHslot".into(),
                RedisValue::Integer(s.slots.first().map_or(-1, |r| r.0 as i64)),
                "maxHslot".into(),
                RedisValue::Integer(s.slots.last().map_or(-1, |r| r.1 as i64)),
                "pendingMessages".into(),
                RedisValue::Integer(c.pending(&s.id) as i64),
                "failing".into(),
                RedisValue::Integer(s.failing as i64),
            ])
        })
        .collect();
    let n = c.node.counters();
    let counter = |name: &str, v: &std::sync::atomic::AtomicU64| {
        [
            RedisValue::from(name),
            RedisValue::Integer(v.load(Ordering::Relaxed) as i64),
        ]
    };
    let mut out = vec![
        "MyId".into(),
        c.my_id.as_str().into(),
        "MyRunId".into(),
        format!("{:016x}", c.node.run_id()).into(),
        RedisValue::Array(shards),
    ];
    for (name, v) in [
        ("messagesSent", &n.sent),
        ("bytesSent", &n.sent_bytes),
        ("messagesReceived", &n.received),
        ("rejectedMalformed", &n.malformed),
        ("droppedDuplicate", &n.duplicates),
        ("droppedStale", &n.stale),
        ("retries", &n.retried),
        ("undelivered", &n.undelivered),
    ] {
        out.extend(counter(name, v));
    }
    out.extend([
        "executionsInFlight".into(),
        RedisValue::Integer(c.node.in_flight() as i64),
    ]);
    RedisValue::Array(out)
}

pub(crate) fn rg_infocluster(ctx: &Context, args: Vec<String>) -> RedisResult {
    if args.len() != 1 {
        return Err(RedisError::WrongArity);
    }
    Ok(match cluster() {
        Some(c) => info(ctx, c),
        None => RedisValue::SimpleStringStatic("no cluster mode"),
    })
}

/// Kept for 1.x compatibility; never required (the topology refreshes itself).
pub(crate) fn rg_refreshcluster(ctx: &Context, args: Vec<String>) -> RedisResult {
    if args.len() != 1 {
        return Err(RedisError::WrongArity);
    }
    if let Some(c) = cluster() {
        c.refresh(ctx);
    }
    Ok(RedisValue::SimpleStringStatic("OK"))
}

fn hex(s: &str) -> Result<Vec<u8>, RedisError> {
    if s.len() % 2 != 0 {
        return Err(RedisError::Str("ERR hex payload has an odd length"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&s[i..i + 2], 16)
                .map_err(|_| RedisError::Str("ERR hex payload is not hex"))
        })
        .collect()
}

/// Test hook: `RG.INNERTESTMSG <node id> RAW <hex>` sends those bytes as a Gears cluster
/// message; `… REPLAY` sends the last message sent to that node again (a duplicate);
/// `… TRUNCATE <n>` sends it cut to `n` bytes. Only for tests of the receiver's defences:
/// refused unless the module was loaded with `ClusterTestHooks 1`.
pub(crate) fn rg_innertestmsg(ctx: &Context, args: Vec<String>) -> RedisResult {
    let enabled = crate::runtime::runtime()?
        .config()
        .extra
        .iter()
        .any(|(k, v)| {
            k.eq_ignore_ascii_case("ClusterTestHooks") && matches!(v.as_str(), "1" | "yes")
        });
    if !enabled {
        return Err(RedisError::Str(
            "ERR test hook disabled: load the module with ClusterTestHooks 1",
        ));
    }
    let c = cluster().ok_or(RedisError::Str("ERR not in cluster mode"))?;
    let (target, mode, rest) = match args.as_slice() {
        [_, target, mode, rest @ ..] => (target, mode.to_ascii_uppercase(), rest),
        _ => return Err(RedisError::WrongArity),
    };
    let bytes = match (mode.as_str(), rest) {
        ("RAW", [payload]) => hex(payload)?,
        ("REPLAY", []) => c
            .last_sent(target)
            .ok_or(RedisError::Str("ERR nothing was sent to that node yet"))?,
        ("TRUNCATE", [n]) => {
            let n: usize = n
                .parse()
                .map_err(|_| RedisError::Str("ERR TRUNCATE takes a byte count"))?;
            let mut last = c
                .last_sent(target)
                .ok_or(RedisError::Str("ERR nothing was sent to that node yet"))?;
            last.truncate(n);
            last
        }
        _ => {
            return Err(RedisError::Str(
                "ERR usage: RG.INNERTESTMSG <node id> RAW <hex> | REPLAY | TRUNCATE <n>",
            ))
        }
    };
    if c.send_raw(ctx, target, &bytes) {
        Ok(RedisValue::SimpleStringStatic("OK"))
    } else {
        Err(RedisError::Str("ERR the cluster bus refused the message"))
    }
}
