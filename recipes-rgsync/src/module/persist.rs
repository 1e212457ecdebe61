//! Jobs saved with the RDB: an aux field of the module type `rgsyncaux`, written before
//! Gears' own (which holds the jobs' registrations, rebuilt from the jobs loaded here).
//! Between saves, `RGSYNC.ADD` / `RGSYNC.REMOVE` are replicated verbatim (AOF, replicas).
//! The saved jobs include their connection strings: the RDB is as secret as the data.

use std::os::raw::c_int;

use redis_module::native_types::RedisType;
use redis_module::raw;

use super::jobs;
use crate::config::JobConfig;

/// The module type carrying the aux field (holds no keys).
pub static RGSYNC_AUX: RedisType =
    RedisType::new("rgsyncaux", 1, gears::aux_only_methods(aux_load, aux_save));

/// Encodes job configurations (format version 1).
pub fn encode(configs: &[JobConfig]) -> Vec<u8> {
    bincode::encode_to_vec(configs, bincode::config::standard()).unwrap_or_default()
}

/// Decodes what [`encode`] wrote.
pub fn decode(bytes: &[u8]) -> Result<Vec<JobConfig>, String> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let configs: Vec<JobConfig> = bincode::decode_from_slice(bytes, bincode::config::standard())
        .map(|(v, _)| v)
        .map_err(|e| e.to_string())?;
    // What the RDB holds is checked like a command's arguments (a damaged or hand-made file
    // must not make a job the writer cannot run).
    for c in &configs {
        c.validate().map_err(|e| e.to_string())?;
    }
    Ok(configs)
}

extern "C" fn aux_save(rdb: *mut raw::RedisModuleIO, when: c_int) {
    if when != raw::REDISMODULE_AUX_BEFORE_RDB as c_int {
        return;
    }
    let bytes = std::panic::catch_unwind(|| {
        let configs: Vec<JobConfig> = jobs::all().iter().map(|j| j.config.clone()).collect();
        encode(&configs)
    })
    .unwrap_or_default();
    raw::save_slice(rdb, &bytes);
}

extern "C" fn aux_load(rdb: *mut raw::RedisModuleIO, _encver: c_int, when: c_int) -> c_int {
    if when != raw::REDISMODULE_AUX_BEFORE_RDB as c_int {
        return raw::REDISMODULE_OK as c_int;
    }
    let Ok(buffer) = raw::load_string_buffer(rdb) else {
        return raw::REDISMODULE_ERR as c_int;
    };
    let bytes = buffer.as_ref().to_vec();
    match std::panic::catch_unwind(move || decode(&bytes).map(jobs::replace_all)) {
        Ok(Ok(())) => raw::REDISMODULE_OK as c_int,
        Ok(Err(e)) => {
            redis_module::MODULE_CONTEXT.log_warning(&format!("rgsync: cannot load jobs: {e}"));
            raw::REDISMODULE_ERR as c_int
        }
        Err(_) => raw::REDISMODULE_ERR as c_int,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_round_trip() {
        let job = JobConfig::parse_args(
            &[
                "j",
                "KEY",
                "u:{a}:{b:integer}",
                "TABLE",
                "t",
                "COLUMNS",
                "x:float",
                "CONNECTION",
                "Driver={SQLite3}",
                "COALESCE",
                "yes",
            ]
            .map(String::from),
        )
        .unwrap();
        let back = decode(&encode(std::slice::from_ref(&job))).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0], job);
        assert!(decode(b"garbage").is_err());
        assert!(decode(b"").unwrap().is_empty());
        // Well-formed bytes holding a job the commands would refuse are refused too.
        let mut bad_table = job.clone();
        bad_table.table = "t\"; DROP TABLE x; --".into();
        let err = decode(&encode(&[bad_table])).unwrap_err();
        assert!(err.contains("invalid"), "{err}");
        let mut bad_event = job.clone();
        bad_event.events = vec!["rename".into()];
        assert!(decode(&encode(&[bad_event])).is_err());
        let mut bad_checkpoint = job;
        bad_checkpoint.checkpoint_table = "cp\"x".into();
        assert!(decode(&encode(&[bad_checkpoint])).is_err());
    }
}
