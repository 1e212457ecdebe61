//! What the layers above and the libraries hook into the runtime, owned by the [`Runtime`]
//! value (no statics): the stream-written callback of the triggers layer, the write guard, the
//! status hooks of `RG.DUMPREGISTRATIONS` and the loading-ended hooks. Libraries set theirs
//! from their `init`, which runs after Gears' own.
//!
//! [`Runtime`]: crate::runtime::Runtime

use std::sync::{OnceLock, RwLock};

use redis_module::Context;

/// Extra `name value` pairs a module shows in `RG.DUMPREGISTRATIONS` for the registrations of
/// one of its functions (under `RegistrationData` → `extra`), from the function name and ARGS.
pub type StatusHook = fn(args: &[String]) -> Vec<(String, String)>;

/// Decides about one command: `Some(message)` refuses it.
pub type WriteGuard = fn(command: &[u8], key: &[u8]) -> Option<String>;

/// Told about an `XADD` Gears made itself inside a notification or a `sync` execution (Redis
/// does not deliver the keyspace event to the module that is running): the triggers layer
/// counts the entry for the stream registrations.
pub(crate) type StreamWritten = fn(ctx: &Context, key: &[u8]);

/// The hooks of one runtime.
pub(crate) struct Hooks {
    stream_written: StreamWritten,
    guard: OnceLock<WriteGuard>,
    status: RwLock<Vec<(&'static str, StatusHook)>>,
    loading_ended: RwLock<Vec<fn()>>,
}

impl Hooks {
    pub(crate) fn new(stream_written: StreamWritten) -> Self {
        Self {
            stream_written,
            guard: OnceLock::new(),
            status: RwLock::new(Vec::new()),
            loading_ended: RwLock::new(Vec::new()),
        }
    }

    /// Reports an `XADD` Gears made itself (see [`StreamWritten`]).
    pub(crate) fn stream_written(&self, ctx: &Context, key: &[u8]) {
        (self.stream_written)(ctx, key);
    }

    /// Installs the write guard; `false` if one is installed already.
    pub(crate) fn set_guard(&self, guard: WriteGuard) -> bool {
        self.guard.set(guard).is_ok()
    }

    /// The write guard, if a library installed one.
    pub(crate) fn guard(&self) -> Option<WriteGuard> {
        self.guard.get().copied()
    }

    /// Shows `hook`'s pairs for every registration of `function` (replacing an earlier hook).
    pub(crate) fn set_status(&self, function: &'static str, hook: StatusHook) {
        let mut hooks = self.status.write().unwrap_or_else(|p| p.into_inner());
        hooks.retain(|(f, _)| *f != function);
        hooks.push((function, hook));
    }

    /// The extra pairs of a registration of `function` with `args`, if its module set a hook
    /// (`None` as well if the hook panics).
    pub(crate) fn status(&self, function: &str, args: &[String]) -> Option<Vec<(String, String)>> {
        let hooks = self.status.read().unwrap_or_else(|p| p.into_inner());
        let hook = hooks.iter().find(|(f, _)| *f == function)?.1;
        drop(hooks);
        std::panic::catch_unwind(|| hook(args)).ok()
    }

    /// Runs `hook` every time loading ends.
    pub(crate) fn add_loading_ended(&self, hook: fn()) {
        self.loading_ended
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(hook);
    }

    /// Runs the loading-ended hooks; a panicking hook is caught.
    pub(crate) fn loading_ended(&self) {
        let hooks = self
            .loading_ended
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for hook in hooks {
            let _ = std::panic::catch_unwind(hook);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(_: &Context, _: &[u8]) {}

    #[test]
    fn status_hooks_replace_and_survive_panics() {
        let hooks = Hooks::new(ignore);
        assert_eq!(hooks.status("f", &[]), None);
        hooks.set_status("f", |args| vec![("n".into(), args.len().to_string())]);
        hooks.set_status("f", |args| vec![("args".into(), args.join(","))]);
        hooks.set_status("g", |_| panic!("broken hook"));
        let args = ["a".to_string(), "b".to_string()];
        assert_eq!(
            hooks.status("f", &args),
            Some(vec![("args".into(), "a,b".into())])
        );
        assert_eq!(hooks.status("g", &args), None);
    }

    #[test]
    fn one_guard_per_server() {
        let hooks = Hooks::new(ignore);
        assert!(hooks.guard().is_none());
        assert!(hooks.set_guard(|_, _| None));
        assert!(!hooks.set_guard(|_, _| Some("second".into())));
        assert_eq!(hooks.guard().and_then(|g| g(b"SET", b"k")), None);
    }
}
