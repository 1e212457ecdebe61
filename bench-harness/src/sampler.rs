//! The server-side counters a spike run samples at each second boundary: MariaDB rows
//! written (per table where `userstat` is on, else server-wide handler counts) and the
//! write-behind job's `RGSYNC.STATUS` (backlog, lag, rows committed, state).

use std::collections::HashMap;

use odbc_api::{Connection, Cursor};

use crate::stats::Sample;
use crate::targets;

/// How database rows written are counted.
#[derive(Debug, Clone, Copy, PartialEq)]
enum DbCounter {
    /// `information_schema.TABLE_STATISTICS.ROWS_CHANGED` of the target table (needs
    /// `userstat=1`, which the script sets): rows inserted or updated in that table only.
    TableStatistics,
    /// `Handler_write + Handler_update` (server-wide: anything else writing counts too).
    Handlers,
}

impl DbCounter {
    fn describe(self) -> &'static str {
        match self {
            DbCounter::TableStatistics => {
                "information_schema.TABLE_STATISTICS.ROWS_CHANGED of the target table"
            }
            DbCounter::Handlers => "Handler_write + Handler_update (server-wide; userstat is off)",
        }
    }
}

fn query_u64s(conn: &Connection<'static>, sql: &str, col: u16) -> Result<Vec<u64>, String> {
    let mut out = Vec::new();
    if let Some(mut cursor) = conn.execute(sql, (), None).map_err(|e| e.to_string())? {
        while let Some(mut row) = cursor.next_row().map_err(|e| e.to_string())? {
            let mut buf = Vec::new();
            row.get_text(col, &mut buf).map_err(|e| e.to_string())?;
            out.push(
                String::from_utf8_lossy(&buf)
                    .trim()
                    .parse::<u64>()
                    .map_err(|e| e.to_string())?,
            );
        }
    }
    Ok(out)
}

fn db_counter(conn: &Connection<'static>) -> DbCounter {
    match query_u64s(conn, "SELECT @@userstat", 1) {
        Ok(v) if v.first() == Some(&1) => DbCounter::TableStatistics,
        _ => DbCounter::Handlers,
    }
}

/// Rows written so far, by `counter`.
fn db_rows(conn: &Connection<'static>, counter: DbCounter, table: &str) -> Result<u64, String> {
    let sql = match counter {
        DbCounter::TableStatistics => format!(
            "SELECT COALESCE(SUM(ROWS_CHANGED),0) FROM information_schema.TABLE_STATISTICS WHERE TABLE_SCHEMA=DATABASE() AND TABLE_NAME='{}'",
            table.replace('\'', "")
        ),
        DbCounter::Handlers => {
            "SHOW GLOBAL STATUS WHERE Variable_name IN ('Handler_write','Handler_update')".into()
        }
    };
    let col = if counter == DbCounter::Handlers { 2 } else { 1 };
    Ok(query_u64s(conn, &sql, col)?.iter().sum())
}

/// `RGSYNC.STATUS <job>` as a map.
pub(crate) fn rgsync_status(
    con: &mut redis::Connection,
    job: &str,
) -> Result<HashMap<String, String>, String> {
    let v: Vec<redis::Value> = redis::cmd("RGSYNC.STATUS")
        .arg(job)
        .query(con)
        .map_err(|e| e.to_string())?;
    let s = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).to_string(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Int(i) => i.to_string(),
        _ => String::new(),
    };
    Ok(v.chunks(2)
        .filter(|p| p.len() == 2)
        .map(|p| (s(&p[0]), s(&p[1])))
        .collect())
}

/// The counters of one run, each on its own connection.
pub(crate) struct Sampler {
    db: Option<(Connection<'static>, DbCounter, String)>,
    wb: Option<(redis::Connection, String)>,
}

impl Sampler {
    /// Connects to what to sample: the database (ODBC connection string, table) and the
    /// write-behind job (Redis URL, job name), each when named.
    pub(crate) fn new(
        db: &Option<(String, String)>,
        rgsync: &Option<(String, String)>,
    ) -> Result<Sampler, String> {
        let db = match db {
            Some((conn, table)) => {
                let c = targets::odbc(conn)?;
                let counter = db_counter(&c);
                Some((c, counter, table.clone()))
            }
            None => None,
        };
        let wb = match rgsync {
            Some((url, job)) => {
                let con = redis::Client::open(url.as_str())
                    .and_then(|c| c.get_connection())
                    .map_err(|e| format!("redis {url}: {e}"))?;
                Some((con, job.clone()))
            }
            None => None,
        };
        Ok(Sampler { db, wb })
    }

    /// How the database rows are counted, when they are.
    pub(crate) fn db_counter(&self) -> Option<&'static str> {
        self.db.as_ref().map(|(_, c, _)| c.describe())
    }

    /// Takes a sample; also says whether the write-behind job is drained (backlog 0, idle).
    pub(crate) fn sample(&mut self) -> (Sample, bool) {
        let mut s = Sample {
            db_rows: self
                .db
                .as_ref()
                .and_then(|(c, counter, table)| db_rows(c, *counter, table).ok()),
            ..Sample::default()
        };
        let mut drained = true;
        if let Some((con, job)) = &mut self.wb {
            if let Ok(st) = rgsync_status(con, job) {
                let n = |k: &str| st.get(k).and_then(|v| v.parse::<u64>().ok());
                s.backlog = n("backlog");
                s.lag_ms = n("lag_ms");
                s.wb_rows = n("rows");
                drained =
                    s.backlog == Some(0) && st.get("state").map(String::as_str) == Some("idle");
            } else {
                drained = false;
            }
        }
        (s, drained)
    }
}
