//! The loadable `rgsync` module's parts (declared by the `rgsync-module` crate):
//!
//! - [`jobs`]: the jobs of this server, each with its two registrations;
//! - [`capture`]: the `sync` registration appending each change to the job's stream;
//! - [`drain`]: the `async_local` stream consumer writing batches to the database;
//! - [`commands`]: `RGSYNC.ADD`, `RGSYNC.REMOVE`, `RGSYNC.LIST`, `RGSYNC.STATUS`;
//! - [`persist`]: jobs saved in the RDB (the `rgsync` field of Gears' aux field);
//! - [`config_file`]: jobs from `rgsync.config <file>` at load;
//! - [`write_through`]: `RGSYNC.WRITETHROUGH`, a reply once the row is in the database.

pub mod capture;
pub mod commands;
pub mod config_file;
pub mod drain;
pub mod jobs;
pub mod persist;
pub mod write_through;

use gears::command::{Context, RedisString, Status};

use crate::secrets::mask_secrets_in_text;

/// The `rgsync` module's initialisation: the jobs saved in the RDB ([`persist`]), then
/// [`init`].
pub fn init_with_rdb(ctx: &Context, args: &[RedisString]) -> Status {
    if let Err(e) = persist::save_jobs_in_rdb(ctx) {
        ctx.log_warning(&format!("rgsync: {e}"));
        return Status::Err;
    }
    init(ctx, args)
}

/// Module initialisation (after Gears'): loads the jobs of `rgsync.config <file>`, if given.
pub fn init(ctx: &Context, args: &[RedisString]) -> Status {
    let args: Vec<String> = args.iter().map(|a| a.to_string_lossy()).collect();
    let option = |name: &str| {
        args.chunks(2)
            .find(|p| p.len() == 2 && p[0].eq_ignore_ascii_case(name))
            .map(|p| p[1].clone())
    };
    if let Some(ms) = option("rgsync.test_pause_after_commit_ms").and_then(|v| v.parse().ok()) {
        drain::PAUSE_AFTER_COMMIT_MS.store(ms, std::sync::atomic::Ordering::Relaxed);
    }
    gears::set_write_guard(ctx, jobs::write_guard);
    gears::api::on_loading_ended(jobs::reconcile);
    gears::api::set_status_hook(jobs::WRITER, jobs::writer_status);
    // On a cluster, adding or removing a job on one master does it on every master.
    gears::api::cluster_wide_command("RGSYNC.ADD");
    gears::api::cluster_wide_command("RGSYNC.REMOVE");
    if let Some(path) = option("rgsync.config") {
        match config_file::load(&path) {
            Ok(configs) => {
                for config in configs {
                    let name = config.name.clone();
                    if let Err(e) = jobs::add(config, true) {
                        let e = mask_secrets_in_text(&e.to_string());
                        ctx.log_warning(&format!("rgsync: job '{name}' from {path}: {e}"));
                        return Status::Err;
                    }
                    ctx.log_notice(&format!("rgsync: job '{name}' loaded from {path}"));
                }
            }
            Err(e) => {
                // (`config_file::parse` masks the secrets of the line it quotes.)
                ctx.log_warning(&format!("rgsync: {path}: {e}"));
                return Status::Err;
            }
        }
    }
    Status::Ok
}
