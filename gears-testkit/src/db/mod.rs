//! The databases of the rgsync tests, over ODBC: the shared MariaDB and PostgreSQL on
//! 127.0.0.1 (started by `scripts/db.sh`, reused when they already answer), SQLite files,
//! queries whose rows come back as text, and private servers for fault tests ([`private`]).

pub mod private;

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use odbc_api::{ConnectionOptions, Cursor, ResultSetMetadata};

use crate::files::workspace_root;

/// The shared MariaDB (`scripts/db.sh`): database, user and password `test`.
pub const MARIADB: &str =
    "Driver={MariaDB Unicode};Server=127.0.0.1;Port=3306;Database=test;Uid=test;Pwd=test;";
/// The shared PostgreSQL (`scripts/db.sh`): database, user and password `test`.
pub const POSTGRES: &str =
    "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Database=test;Uid=test;Pwd=test;";

/// The connection string of the SQLite file `app.db` in `dir`.
pub fn sqlite(dir: &Path) -> String {
    format!("Driver={{SQLite3}};Database={}/app.db", dir.display())
}

/// A table name unique to this test process: `<prefix>_<pid>`.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", std::process::id())
}

/// Whether `dsn` connects.
pub fn reachable(dsn: &str) -> bool {
    try_connect(dsn).is_ok()
}

/// Whether `dsn` connects within `timeout` (checked every 200 ms).
pub fn wait_until_reachable(dsn: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while !reachable(dsn) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    true
}

fn try_connect(dsn: &str) -> Result<odbc_api::Connection<'static>, odbc_api::Error> {
    odbc_api::environment()
        .expect("the ODBC environment")
        .connect_with_connection_string(dsn, ConnectionOptions::default())
}

/// A connection to `dsn`. For the shared servers ([`MARIADB`], [`POSTGRES`]) that do not
/// answer, `scripts/db.sh` runs once per test process first (it reuses a server that
/// answers and starts the others); panics if the database still cannot be reached.
pub fn connect(dsn: &str) -> odbc_api::Connection<'static> {
    let first = try_connect(dsn);
    let result = match first {
        Err(_) if dsn == MARIADB || dsn == POSTGRES => {
            start_shared_servers();
            try_connect(dsn)
        }
        other => other,
    };
    result.unwrap_or_else(|e| panic!("database not reachable ({e}); start it with scripts/db.sh"))
}

/// Runs `scripts/db.sh` once in this process (the first caller waits for it).
fn start_shared_servers() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let script = workspace_root().join("scripts/db.sh");
        match std::process::Command::new("bash").arg(&script).status() {
            Ok(st) if st.success() => {}
            other => eprintln!("{} failed: {other:?}", script.display()),
        }
    });
}

/// Runs `sql` (no result set expected); panics with the statement and the error.
pub fn exec(dsn: &str, sql: &str) {
    connect(dsn)
        .execute(sql, (), None)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Every row of `sql` as text (NULL as `"NULL"`), sorted; panics if the query fails.
pub fn rows(dsn: &str, sql: &str) -> Vec<Vec<String>> {
    fetch(&connect(dsn), sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// [`rows`], or `None` if the query fails (the table does not exist yet).
pub fn try_rows(dsn: &str, sql: &str) -> Option<Vec<Vec<String>>> {
    fetch(&connect(dsn), sql).ok()
}

fn fetch(con: &odbc_api::Connection<'_>, sql: &str) -> Result<Vec<Vec<String>>, odbc_api::Error> {
    let mut out = Vec::new();
    if let Some(mut cursor) = con.execute(sql, (), None)? {
        let n = cursor.num_result_cols()? as u16;
        while let Some(mut row) = cursor.next_row()? {
            let mut r = Vec::new();
            for i in 1..=n {
                let mut buf = Vec::new();
                r.push(if row.get_text(i, &mut buf)? {
                    String::from_utf8_lossy(&buf).into_owned()
                } else {
                    "NULL".into()
                });
            }
            out.push(r);
        }
    }
    out.sort();
    Ok(out)
}
