//! # gears
//!
//! The crate Gears module authors depend on. One dependency line gives the typed dataflow
//! engine ([`gears_core`], re-exported here), the `#[gears::register]` attribute, and
//! [`export!`], which turns the crate into a module for `redis-server --loadmodule`.
//!
//! ```
//! use gears::prelude::*;
//!
//! /// Counts the keys of every shard.
//! #[gears::register]
//! fn key_count() -> GearsBuilder<u64> {
//!     GearsBuilder::new(KeysOnlyReader::new("*")).count()
//! }
//!
//! let host = gears::testing::MemoryHost::new();
//! host.set("a", "1");
//! assert_eq!(key_count().run(&host).results, [1]);
//! assert_eq!(gears::registry::find("key_count").unwrap().doc, "Counts the keys of every shard.");
//! ```
//!
//! A module crate (`crate-type = ["cdylib"]`) adds one line, `gears::export! { name: "mymod" }`,
//! and its registered flows run with `RG.RUN <function> [UNBLOCKING] [ARGS ...]`.
//!
//! This is the only crate of the workspace that touches the Redis module API.

extern crate self as gears;

// The layers, bottom up; each calls only those below it (docs/architecture.md).
pub mod api;
pub mod command;
mod commands;
mod ffi;
mod runtime;
mod triggers;

pub use runtime::write_guard::{set_write_guard, WriteGuard};

pub use gears_core::*;
pub use gears_macros::register;

#[doc(hidden)]
pub mod __private {
    pub use crate::commands::entry;
    pub use crate::runtime::persist::GEARS_AUX;
    pub use crate::runtime::write_guard::rg_refused;
    pub use crate::triggers::keyspace::on_keyspace_event;
    pub use linkme;
    pub use redis_module;

    /// Module initialisation: the top layer wires the triggers into the runtime.
    pub fn init(
        ctx: &redis_module::Context,
        args: &[redis_module::RedisString],
    ) -> redis_module::Status {
        crate::runtime::init(ctx, args, crate::triggers::keyspace::on_stream_write)
    }
}

/// Declares the module: wraps the single `redis_module!` of the cdylib, registers the `RG.*`
/// commands and starts Gears when redis-server loads it.
///
/// ```ignore
/// gears::export! { name: "wordcount" }
/// ```
///
/// A module with its own commands and initialisation (run after Gears'), written with
/// [`command`]'s types; its state in the RDB is an [`api::AuxField`]:
///
/// ```ignore
/// gears::export! {
///     name: "rgsync",
///     commands: [["RGSYNC.LIST", my_list, "readonly", 0, 0, 0, ""]],
///     init: my_init,                     // fn(&command::Context, &[command::RedisString]) -> command::Status
/// }
/// ```
///
/// `data_types: [MY_TYPE, ...]` (module types, `redis_module::native_types::RedisType`, in
/// scope at the crate root) registers data types of the module's own.
#[macro_export]
macro_rules! export {
    (name: $name:expr $(, version: $version:expr)?
     $(, data_types: [$($data_type:ident),* $(,)?])?
     $(, commands: [$([$($command:tt)*]),* $(,)?])?
     $(, init: $init:path)? $(,)?) => {
        #[doc(hidden)]
        #[allow(missing_docs, unused_imports)]
        pub mod __gears_module {
            use super::*;
            use $crate::__private::GEARS_AUX;

            fn __gears_module_init(
                ctx: &$crate::__private::redis_module::Context,
                args: &[$crate::__private::redis_module::RedisString],
            ) -> $crate::__private::redis_module::Status {
                let status = $crate::__private::init(ctx, args);
                $(
                    if status == $crate::__private::redis_module::Status::Ok {
                        return $init(ctx, args);
                    }
                )?
                status
            }

            // Inside redis-server memory comes from Redis's allocator; the crate's own unit
            // tests run outside Redis, with the system allocator.
            #[cfg(not(test))]
            $crate::export!(@module $name, $crate::export!(@version $($version)?),
                $crate::__private::redis_module::alloc::RedisAlloc,
                $crate::__private::redis_module::alloc::RedisAlloc,
                [$($($data_type),*)?], [$($([$($command)*]),*)?]);
            #[cfg(test)]
            $crate::export!(@module $name, $crate::export!(@version $($version)?),
                ::std::alloc::System, ::std::alloc::System,
                [$($($data_type),*)?], [$($([$($command)*]),*)?]);
        }
    };
    (@version) => { 1 };
    (@version $version:expr) => { $version };
    (@module $name:expr, $version:expr, $alloc_type:ty, $alloc:expr,
     [$($data_type:ident),*], [$([$($command:tt)*]),*]) => {
        $crate::__private::redis_module::redis_module! {
            name: $name,
            version: $version,
            allocator: ($alloc_type, $alloc),
            data_types: [$($data_type,)* GEARS_AUX],
            init: __gears_module_init,
            commands: [
                ["RG.RUN", $crate::__private::entry::rg_run, "readonly", 0, 0, 0, ""],
                ["RG.GETRESULTS", $crate::__private::entry::rg_getresults, "readonly", 0, 0, 0, ""],
                ["RG.GETRESULTSBLOCKING", $crate::__private::entry::rg_getresultsblocking, "readonly", 0, 0, 0, ""],
                ["RG.GETEXECUTION", $crate::__private::entry::rg_getexecution, "readonly", 0, 0, 0, ""],
                ["RG.DUMPEXECUTIONS", $crate::__private::entry::rg_dumpexecutions, "readonly", 0, 0, 0, ""],
                ["RG.DROPEXECUTION", $crate::__private::entry::rg_dropexecution, "readonly", 0, 0, 0, ""],
                ["RG.ABORTEXECUTION", $crate::__private::entry::rg_abortexecution, "readonly", 0, 0, 0, ""],
                ["RG.DUMPFUNCTIONS", $crate::__private::entry::rg_dumpfunctions, "readonly", 0, 0, 0, ""],
                ["RG.CONFIGGET", $crate::__private::entry::rg_configget, "readonly", 0, 0, 0, ""],
                ["RG.CONFIGSET", $crate::__private::entry::rg_configset, "readonly", 0, 0, 0, ""],
                ["RG.INFOCLUSTER", $crate::__private::entry::rg_infocluster, "readonly", 0, 0, 0, ""],
                ["RG.REFRESHCLUSTER", $crate::__private::entry::rg_refreshcluster, "readonly", 0, 0, 0, ""],
                ["RG.TRIGGER", $crate::__private::entry::rg_trigger, "write", 0, 0, 0, ""],
                ["RG.TRIGGERONKEY", $crate::__private::entry::rg_triggeronkey, "write", 2, 2, 1, ""],
                ["RG.DUMPREGISTRATIONS", $crate::__private::entry::rg_dumpregistrations, "readonly", 0, 0, 0, ""],
                ["RG.UNREGISTER", $crate::__private::entry::rg_unregister, "write", 0, 0, 0, ""],
                ["RG.PAUSEREGISTRATIONS", $crate::__private::entry::rg_pauseregistrations, "write", 0, 0, 0, ""],
                ["RG.UNPAUSEREGISTRATIONS", $crate::__private::entry::rg_unpauseregistrations, "write", 0, 0, 0, ""],
                ["RG.CLEARREGISTRATIONSSTATS", $crate::__private::entry::rg_clearregistrationsstats, "readonly", 0, 0, 0, ""],
                ["RG.REGISTER", $crate::__private::entry::rg_register, "write", 0, 0, 0, ""],
                ["RG.INNERREGISTER", $crate::__private::entry::rg_innerregister, "write", 0, 0, 0, ""],
                ["RG.INNERTESTMSG", $crate::__private::entry::rg_innertestmsg, "readonly", 0, 0, 0, ""],
                ["RG._REFUSED", $crate::__private::rg_refused, "readonly fast", 0, 0, 0, ""],
                $([$($command)*],)*
            ],
            event_handlers: [
                [@ALL: $crate::__private::on_keyspace_event],
            ],
        }
    };
}
