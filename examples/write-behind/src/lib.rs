//! Example module: a write-behind job written in Rust instead of configured by `RGSYNC.ADD`.
//! When redis-server loads it, the job `users` starts copying every `user:<id>` hash (`name`,
//! `age` as an integer) into the table `users` of a SQLite file; the application writes only
//! to Redis.
//!
//! ```text
//! redis-server --loadmodule target/release/libgears_write_behind.so db /tmp/users.db
//! redis-cli HSET user:1 name ann age 42
//! sqlite3 /tmp/users.db 'SELECT * FROM users'     # 1|ann|42
//! redis-cli RGSYNC.STATUS users                   # backlog, lag, rows, ... (rgsync's commands)
//! ```
//!
//! Its job lives in code, so the module declares only rgsync's read-only commands
//! (`RGSYNC.STATUS`, `RGSYNC.LIST`); `librgsync.so` adds `RGSYNC.ADD`/`REMOVE` and the RDB type
//! that keeps jobs added at runtime.

use std::time::Duration;

use gears::command::{Context, RedisString, Status};
use recipes_rgsync::types::ColumnType;
use recipes_rgsync::WriteBehind;

/// The job this module runs, writing into the SQLite file `db`.
pub fn users_job(db: &str) -> WriteBehind {
    WriteBehind::new("users", &format!("Driver=SQLite3;Database={db}"))
        .keys_prefix("user")
        .table("users")
        .mappings([("name", "name")])
        .column("age", "age", ColumnType::Integer)
        .batch(100)
        .duration(Duration::from_millis(100))
        .create_table(true)
}

/// Module load: rgsync's own set-up (the backlog guard, its status in
/// `RG.DUMPREGISTRATIONS`, config-file jobs), then the `users` job. Load arguments:
/// `db <path>` (default `/tmp/gears-users.db`).
fn init(ctx: &Context, args: &[RedisString]) -> Status {
    if recipes_rgsync::module::init(ctx, args) == Status::Err {
        return Status::Err;
    }
    let args: Vec<String> = args.iter().map(|a| a.to_string_lossy()).collect();
    let db = args
        .chunks(2)
        .find(|p| p.len() == 2 && p[0].eq_ignore_ascii_case("db"))
        .map_or("/tmp/gears-users.db", |p| p[1].as_str());
    match users_job(db).register() {
        Ok(()) => {
            ctx.log_notice(&format!("write-behind: job 'users' writes into {db}"));
            Status::Ok
        }
        Err(e) => {
            ctx.log_warning(&format!("write-behind: job 'users': {e}"));
            Status::Err
        }
    }
}

gears::export! {
    name: "write_behind",
    commands: [
        ["RGSYNC.LIST", recipes_rgsync::module::commands::rgsync_list, "readonly", 0, 0, 0, ""],
        ["RGSYNC.STATUS", recipes_rgsync::module::commands::rgsync_status, "readonly", 0, 0, 0, ""],
    ],
    init: init,
}

recipes_rgsync::registrations!();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_maps_name_and_an_integer_age() {
        let job = users_job("/tmp/x.db").build().unwrap();
        assert_eq!(job.key.as_str(), "user:{id}");
        assert_eq!(job.columns_spec(), "name=name:text age=age:integer");
        assert_eq!(job.table, "users");
    }
}
