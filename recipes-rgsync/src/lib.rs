//! # rgsync
//!
//! Write-behind from Redis hashes to SQL databases over ODBC: RedisGears 1.x's rgsync recipe,
//! rebuilt on Gears with its known faults fixed (see `docs/rgsync.md`).
//!
//! - Redis-free core: [`config`] (a job), [`keys`] (key → primary key), [`columns`] (mapped
//!   fields), [`identifiers`] (SQL names a job may use), [`secrets`] (connection strings
//!   masked), [`types`] (typed columns), [`dialect`] (SQL per database), [`change`] (stream entries, `#` ops),
//!   [`plan`] (coalescing, multi-row statements), [`connector`] (ODBC, one transaction per
//!   batch with the checkpoint), [`writer`] (exactly-once, retries, dead letters),
//!   [`validate`] (a job's connection checked when it is added).
//! - The module parts ([`module`]): capture, writer registration, commands, persistence,
//!   write-through; declared by the `rgsync-module` crate (`librgsync.so`).
//! - [`WriteBehind`]: jobs built in Rust by module authors, with [`registrations!`].

pub mod builder;
pub mod change;
pub mod columns;
pub mod config;
pub mod connector;
pub mod dialect;
pub mod error;
pub mod identifiers;
pub mod keys;
pub mod plan;
pub mod secrets;
pub mod types;
pub mod validate;
pub mod writer;

pub mod module;

#[cfg(test)]
mod db_tests;

pub use builder::WriteBehind;
pub use error::SyncError;
