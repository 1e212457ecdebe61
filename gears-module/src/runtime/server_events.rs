//! Server events a library can hook without the Redis module API: [`on_loading_ended`] (an
//! RDB or AOF finished loading, at start-up, after `DEBUG RELOAD`, on a replica after a full
//! sync). The hooks run on the main thread, after Gears' own handling of the event may or may
//! not have run; a panicking hook is caught.

use redis_module::server_events::LoadingSubevent;
use redis_module::Context;

use crate::runtime::runtime;

/// Runs `hook` every time loading ends (RDB or AOF). Call it at module load (`init`).
///
/// ```no_run
/// fn check_state() { /* e.g. re-create what the loaded data implies */ }
/// gears::api::on_loading_ended(check_state);
/// ```
pub fn on_loading_ended(hook: fn()) {
    if let Ok(rt) = runtime() {
        rt.hooks.add_loading_ended(hook);
    }
}

#[redis_module_macros::loading_event_handler]
fn on_loading(_ctx: &Context, subevent: LoadingSubevent) {
    if let (LoadingSubevent::Ended, Ok(rt)) = (subevent, runtime()) {
        rt.hooks.loading_ended();
    }
}
