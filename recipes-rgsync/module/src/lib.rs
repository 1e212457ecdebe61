//! The `rgsync` module: `redis-server --loadmodule librgsync.so [rgsync.config <file>]`.
//! Everything lives in `recipes-rgsync`; this crate only declares the module.

gears::export! {
    name: "rgsync",
    commands: [
        ["RGSYNC.ADD", recipes_rgsync::module::commands::rgsync_add, "write deny-oom", 0, 0, 0, ""],
        ["RGSYNC.REMOVE", recipes_rgsync::module::commands::rgsync_remove, "write", 0, 0, 0, ""],
        ["RGSYNC.LIST", recipes_rgsync::module::commands::rgsync_list, "readonly", 0, 0, 0, ""],
        ["RGSYNC.STATUS", recipes_rgsync::module::commands::rgsync_status, "readonly", 0, 0, 0, ""],
        ["RGSYNC.WRITETHROUGH", recipes_rgsync::module::write_through::rgsync_writethrough, "write deny-oom", 1, 1, 1, ""],
    ],
    init: recipes_rgsync::module::init_with_rdb,
}

recipes_rgsync::registrations!();
