//! `RG.DUMPFUNCTIONS`: every `#[gears::register]` function, its kind and doc line.

use redis_module::{Context, RedisError, RedisResult, RedisValue};

pub(crate) fn rg_dumpfunctions(_: &Context, args: Vec<String>) -> RedisResult {
    if args.len() != 1 {
        return Err(RedisError::WrongArity);
    }
    Ok(RedisValue::Array(
        gears_core::registry::functions()
            .into_iter()
            .map(|f| {
                RedisValue::Array(vec![
                    "name".into(),
                    f.name.into(),
                    "kind".into(),
                    f.kind.name().into(),
                    "doc".into(),
                    f.doc.into(),
                ])
            })
            .collect(),
    ))
}
