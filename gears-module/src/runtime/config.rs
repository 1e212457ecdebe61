//! Module configuration: load options (`ExecutionThreads 4 MaxExecutions 500 ...`) and
//! `RG.CONFIGGET` / `RG.CONFIGSET`, with RedisGears 1.x's names and defaults.

use std::collections::BTreeMap;

/// The known options and free user keys.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) max_executions: usize,
    pub(crate) max_executions_per_registration: usize,
    pub(crate) profile_executions: bool,
    pub(crate) execution_threads: usize,
    pub(crate) execution_max_idle_time_ms: u64,
    pub(crate) send_msg_retries: u64,
    /// Payload bytes per record batch between cluster shards (1 = one record per message).
    pub(crate) shuffle_batch_bytes: usize,
    /// Keys that are not Gears options, readable from steps.
    pub(crate) extra: BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_executions: 1000,
            max_executions_per_registration: 100,
            profile_executions: false,
            execution_threads: 3,
            execution_max_idle_time_ms: 5000,
            send_msg_retries: 3,
            shuffle_batch_bytes: gears_core::plan::DEFAULT_MESSAGE_BYTES,
            extra: BTreeMap::new(),
        }
    }
}

/// What setting one key did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SetOutcome {
    Set,
    SavedAsExtra,
}

fn parse_positive(key: &str, value: &str) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(format!("{key} must be a positive integer, got '{value}'")),
    }
}

fn parse_count(key: &str, value: &str) -> Result<u64, String> {
    value
        .parse::<u64>()
        .map_err(|_| format!("{key} must be a non-negative integer, got '{value}'"))
}

fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" => Ok(true),
        "0" | "no" | "false" => Ok(false),
        _ => Err(format!("{key} must be 0 or 1, got '{value}'")),
    }
}

impl Config {
    /// Parses module load options: `Name value` pairs, names case-insensitive.
    pub(crate) fn from_args(args: &[String]) -> Result<Self, String> {
        if args.len() % 2 != 0 {
            return Err(format!(
                "module options come in 'Name value' pairs; '{}' has no value",
                args[args.len() - 1]
            ));
        }
        let mut config = Config::default();
        for pair in args.chunks(2) {
            config.set(&pair[0], &pair[1], true)?;
        }
        Ok(config)
    }

    /// Sets one option. `loading` allows load-only options.
    pub(crate) fn set(
        &mut self,
        key: &str,
        value: &str,
        loading: bool,
    ) -> Result<SetOutcome, String> {
        match key.to_ascii_lowercase().as_str() {
            "maxexecutions" => self.max_executions = parse_positive(key, value)? as usize,
            "maxexecutionsperregistration" => {
                self.max_executions_per_registration = parse_positive(key, value)? as usize
            }
            "profileexecutions" => self.profile_executions = parse_bool(key, value)?,
            "executionmaxidletime" => self.execution_max_idle_time_ms = parse_positive(key, value)?,
            // 0: no retransmission at all, give up after the first timeout.
            "sendmsgretries" => self.send_msg_retries = parse_count(key, value)?,
            "shufflebatchbytes" => {
                self.shuffle_batch_bytes = parse_positive(key, value)?.min(1 << 20) as usize
            }
            "executionthreads" => {
                if !loading {
                    return Err("ExecutionThreads is not configurable at runtime".into());
                }
                self.execution_threads = parse_positive(key, value)?.min(256) as usize;
            }
            _ => {
                self.extra.insert(key.to_string(), value.to_string());
                return Ok(SetOutcome::SavedAsExtra);
            }
        }
        Ok(SetOutcome::Set)
    }

    /// Reads one option (or a free user key).
    pub(crate) fn get(&self, key: &str) -> Option<String> {
        Some(match key.to_ascii_lowercase().as_str() {
            "maxexecutions" => self.max_executions.to_string(),
            "maxexecutionsperregistration" => self.max_executions_per_registration.to_string(),
            "profileexecutions" => (self.profile_executions as u8).to_string(),
            "executionthreads" => self.execution_threads.to_string(),
            "executionmaxidletime" => self.execution_max_idle_time_ms.to_string(),
            "sendmsgretries" => self.send_msg_retries.to_string(),
            "shufflebatchbytes" => self.shuffle_batch_bytes.to_string(),
            _ => return self.extra.get(key).cloned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn load_options() {
        let c = Config::from_args(&args(&[
            "ExecutionThreads",
            "4",
            "maxexecutions",
            "500",
            "MyKey",
            "x",
        ]))
        .unwrap();
        assert_eq!(c.execution_threads, 4);
        assert_eq!(c.max_executions, 500);
        assert_eq!(c.get("MyKey").as_deref(), Some("x"));
        assert!(Config::from_args(&args(&["MaxExecutions"])).is_err());
        assert!(Config::from_args(&args(&["MaxExecutions", "zero"])).is_err());
        assert!(Config::from_args(&args(&["MaxExecutions", "0"])).is_err());
        // No retransmission at all is a valid choice; a negative count is not.
        let c = Config::from_args(&args(&["SendMsgRetries", "0"])).unwrap();
        assert_eq!(c.send_msg_retries, 0);
        assert!(Config::from_args(&args(&["SendMsgRetries", "-1"])).is_err());
    }

    #[test]
    fn runtime_set() {
        let mut c = Config::default();
        assert_eq!(c.set("ProfileExecutions", "1", false), Ok(SetOutcome::Set));
        assert!(c.profile_executions);
        assert!(c
            .set("ExecutionThreads", "2", false)
            .unwrap_err()
            .contains("not configurable at runtime"));
        assert_eq!(c.set("foo", "bar", false), Ok(SetOutcome::SavedAsExtra));
        assert_eq!(c.get("nope"), None);
    }
}
