//! Example Gears module: commands made of flows.
//!
//! - `RG.TRIGGER greet <name>` replies `hello <name>` and counts greetings in `greetings`
//!   (`sync`: the count is written and replicated with the command);
//! - `RG.TRIGGERONKEY bump <key> <field> [n]` adds `n` (default 1) to a hash field and replies
//!   the new value. The key is the command's second argument, where cluster clients look for
//!   it, so they route the command to the key's shard.
//!
//! ```text
//! redis-server --loadmodule target/release/libgears_commands.so
//! redis-cli RG.TRIGGER greet ann              # 1) "hello ann"
//! redis-cli RG.TRIGGERONKEY bump user:1 visits 5
//! ```

use gears::context;
use gears::prelude::*;

/// `RG.TRIGGER greet <name>` → `hello <name>`.
#[gears::register]
pub fn greet() -> Result<Registration, GearsError> {
    GearsBuilder::new(CommandReader::new("greet"))
        .try_map(|args| match args.as_slice() {
            [_, name] => {
                context::call(&["INCR", "greetings"]).map_err(|e| e.to_string())?;
                Ok(format!("hello {name}"))
            }
            _ => Err("usage: RG.TRIGGER greet <name>".to_string()),
        })
        .register(ExecutionMode::Sync)
}

/// The amount of a `bump`: the optional third argument, 1 by default.
pub fn amount(args: &[String]) -> Result<i64, String> {
    match args {
        [_, _, _] => Ok(1),
        [_, _, _, n] => n
            .parse()
            .map_err(|_| format!("n must be an integer, got '{n}'")),
        _ => Err("usage: RG.TRIGGERONKEY bump <key> <field> [n]".into()),
    }
}

/// `RG.TRIGGERONKEY bump <key> <field> [n]` → the field's new value.
#[gears::register]
pub fn bump() -> Result<Registration, GearsError> {
    GearsBuilder::new(CommandReader::new("bump"))
        .try_map(|args| {
            let n = amount(&args)?;
            let value = context::call(&["HINCRBY", &args[1], &args[2], &n.to_string()])
                .map_err(|e| e.to_string())?;
            value.as_i64().ok_or_else(|| "unexpected reply".to_string())
        })
        .register(ExecutionMode::Sync)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(amount(&args(&["bump", "k", "f"])), Ok(1));
        assert_eq!(amount(&args(&["bump", "k", "f", "-3"])), Ok(-3));
        assert!(amount(&args(&["bump", "k", "f", "x"])).is_err());
        assert!(amount(&args(&["bump", "k"])).is_err());
    }
}

gears::export! { name: "commands" }
