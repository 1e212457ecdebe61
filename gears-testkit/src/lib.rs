//! The test kit of the workspace's real-server tests (not published).
//!
//! - [`Server`] / [`ServerBuilder`]: a redis-server on 127.0.0.1 and a free port, with a
//!   built module and its load options, its own directory (log, RDB, AOF), killed, stopped
//!   or restarted by its PID; killed and its directory removed on drop (its log printed when
//!   the test panics).
//! - [`Cluster`]: N masters with R replicas formed by `redis-cli --cluster create`, slot
//!   owners, resharding, added masters, replica sync and failover waits.
//! - [`module_file`], [`scratch`], [`free_port`], [`free_port_pair`]: built modules, scratch
//!   directories, ports.
//! - [`wait_until`], [`eventually`]: a condition with a deadline.
//! - [`run`], [`show`], [`query`], [`ok`], [`error`], [`command`]: commands and compact replies.
//! - [`rgsync`]: `RGSYNC.ADD` lines, `RGSYNC.STATUS`, waiting for a job to drain.
//! - `db` (feature `db`): the shared MariaDB/PostgreSQL DSNs and SQLite files, rows as text,
//!   private database servers for fault tests.
//!
//! Nothing here talks to anything but 127.0.0.1, and every process it starts is ended by
//! its own PID.
//!
//! ```no_run
//! use gears_testkit::{run, Server};
//! let server = Server::builder().module("gears_wordcount").start();
//! assert_eq!(run(&mut server.conn(), &["PING"]), "PONG");
//! ```

mod builder;
mod cluster;
#[cfg(feature = "db")]
pub mod db;
mod files;
mod ports;
mod process;
pub mod proxy;
mod reply;
pub mod rgsync;
mod server;
mod wait;

pub use builder::ServerBuilder;
pub use cluster::{Cluster, SlotRange};
pub use files::{module_file, scratch};
pub use ports::{free_port, free_port_pair};
pub use reply::{assert_replies, command, error, ok, query, run, show, stream_entries, RawEntry};
pub use server::Server;
pub use wait::{eventually, wait_until};
