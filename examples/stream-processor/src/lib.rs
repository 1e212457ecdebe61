//! Example Gears module: a stream processor. Sensors append readings to `sensor:<id>` streams
//! (`XADD sensor:7 * temp 21.5`); a background (`async_local`) registration with its own
//! consumer group reads them up to 100 entries per execution, or whatever arrived within
//! 50 ms, and keeps per-sensor statistics in the hash `{sensor:<id>}:stats` (`count`, `sum`,
//! `min`, `max`). Entries are acknowledged once processed and trimmed from the stream; a
//! reading that is not a number is reported (`RG.DUMPREGISTRATIONS` → `lastError`) and the
//! rest flows on.
//!
//! ```text
//! redis-server --loadmodule target/release/libgears_sensors.so
//! redis-cli XADD sensor:7 '*' temp 21.5
//! redis-cli HGETALL {sensor:7}:stats
//! ```

use std::time::Duration;

use gears::context;
use gears::prelude::*;

/// The statistics hash of stream `stream` (any bytes): same hash slot as the stream.
pub fn stats_key(stream: &[u8]) -> RedisBytes {
    [b"{", stream, b"}:stats"].concat().into()
}

/// The `temp` reading of an entry.
pub fn reading(entry: &StreamRecord) -> Result<f64, String> {
    let raw = entry
        .field("temp")
        .ok_or_else(|| format!("{}: no temp", entry.id))?;
    raw.parse::<f64>()
        .ok()
        .filter(|t| t.is_finite())
        .ok_or_else(|| format!("{}: temp is not a number: '{raw}'", entry.id))
}

/// Folds one reading into `{stream}:stats`.
fn record(stream: &[u8], temp: f64) -> Result<(), String> {
    let key = stats_key(stream);
    let call = |args: &[&[u8]]| context::call_bytes(args).map_err(|e| e.to_string());
    let text = temp.to_string();
    call(&[b"HINCRBY", &key, b"count", b"1"])?;
    call(&[b"HINCRBYFLOAT", &key, b"sum", text.as_bytes()])?;
    let current = |field: &[u8]| -> Result<Option<f64>, String> {
        Ok(call(&[b"HGET", &key, field])?
            .as_str()
            .and_then(|s| s.parse().ok()))
    };
    if current(b"min")?.is_none_or(|m| temp < m) {
        call(&[b"HSET", &key, b"min", text.as_bytes()])?;
    }
    if current(b"max")?.is_none_or(|m| temp > m) {
        call(&[b"HSET", &key, b"max", text.as_bytes()])?;
    }
    Ok(())
}

/// Per-sensor statistics of `sensor:*` streams, computed in the background in batches.
#[gears::register]
pub fn sensor_stats() -> Result<Registration, GearsError> {
    GearsBuilder::new(
        StreamReader::new("sensor:*")
            .batch(100)
            .duration(Duration::from_millis(50))
            .trim(true),
    )
    .try_for_each(|e| record(&e.key, reading(e)?))
    .register(ExecutionMode::AsyncLocal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_and_keys() {
        assert_eq!(stats_key(b"sensor:7"), "{sensor:7}:stats");
        let registration = sensor_stats().unwrap();
        assert_eq!(registration.mode, ExecutionMode::AsyncLocal);
    }
}

gears::export! { name: "sensors" }
