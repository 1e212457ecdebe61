//! The FFI layer: the only code of gears-module with `unsafe`. Each file wraps one part of
//! the Redis module API (`redis_module::raw`) in safe types and functions, and holds nothing
//! else: what to do with them (caches, type checks, error texts, the shape of a reply) lives in
//! the files that call them. Every `unsafe` block says why it holds (`// SAFETY:`).
//!
//! What the layer relies on, as `redis_module`'s own safe API does:
//! - the module API's function table is filled when the module loads and never changes after,
//!   so reading a function pointer from it is a plain copy (a missing one is `None`, and every
//!   wrapper checks);
//! - a `&Context` is the live context of the running command or callback, or the module
//!   context under its lock (`MODULE_CONTEXT.lock()`): the calling thread holds the Redis lock
//!   while it calls into this layer, and while it makes, clones or drops a [`string`] value.
#![allow(unsafe_code)]
// Every `unsafe` block and impl of the layer says why it holds.
#![deny(clippy::undocumented_unsafe_blocks)]

pub(crate) mod cluster_bus;
pub(crate) mod context;
pub(crate) mod filter;
pub(crate) mod key;
pub(crate) mod scan;
pub(crate) mod string;
