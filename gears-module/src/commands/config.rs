//! `RG.CONFIGGET`, `RG.CONFIGSET`.

use redis_module::{Context, RedisError, RedisResult, RedisValue};

use crate::runtime::config::SetOutcome;
use crate::runtime::runtime;

pub(crate) fn rg_configget(_: &Context, args: Vec<String>) -> RedisResult {
    if args.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    let rt = runtime()?;
    let config = rt.config();
    Ok(RedisValue::Array(
        args[1..]
            .iter()
            .map(|key| match config.get(key) {
                Some(v) => RedisValue::BulkString(v),
                None => RedisValue::BulkString(format!("Unsupported config parameter: {key}")),
            })
            .collect(),
    ))
}

pub(crate) fn rg_configset(_: &Context, args: Vec<String>) -> RedisResult {
    if args.len() < 3 || args.len() % 2 == 0 {
        return Err(RedisError::WrongArity);
    }
    let rt = runtime()?;
    let mut config = rt.config();
    Ok(RedisValue::Array(
        args[1..]
            .chunks(2)
            .map(|kv| match config.set(&kv[0], &kv[1], false) {
                Ok(SetOutcome::Set) => RedisValue::SimpleStringStatic("OK"),
                Ok(SetOutcome::SavedAsExtra) => RedisValue::SimpleStringStatic(
                    "OK - value was saved in extra config dictionary",
                ),
                Err(e) => RedisValue::BulkString(format!("ERR {e}")),
            })
            .collect(),
    ))
}
