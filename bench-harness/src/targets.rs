//! What one request does, per target: a MariaDB upsert over ODBC (autocommit, one prepared
//! statement per connection), a Redis `HSET`, or an HTTP/1.1 keep-alive POST to the app.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use odbc_api::{handles::StatementConnection, Connection, ConnectionOptions, Prepared};

/// Default connection string of the MariaDB started by `scripts/db.sh`.
pub(crate) const MARIADB: &str =
    "Driver={MariaDB Unicode};Server=127.0.0.1;Port=3306;Database=gears_bench;Uid=test;Pwd=test;";

/// One request: upsert user `id` with `temp`.
pub(crate) trait Target {
    fn call(&mut self, id: u64, temp: f64) -> Result<(), String>;
}

/// Opens an ODBC connection (autocommit on).
pub(crate) fn odbc(conn: &str) -> Result<Connection<'static>, String> {
    odbc_api::environment()
        .map_err(|e| format!("odbc environment: {e}"))?
        .connect_with_connection_string(conn, ConnectionOptions::default())
        .map_err(|e| format!("odbc connect: {e}"))
}

/// Runs one statement (DDL, TRUNCATE) on a fresh connection.
pub(crate) fn odbc_exec(conn: &str, sql: &str) -> Result<(), String> {
    odbc(conn)?
        .execute(sql, (), None)
        .map(|_| ())
        .map_err(|e| format!("{sql}: {e}"))
}

/// Drops and creates the benchmark table (`id BIGINT` primary key, `temperature DOUBLE`: the
/// types rgsync's MariaDB dialect maps `integer` and `float` to).
pub(crate) fn reset_table(conn: &str, table: &str) -> Result<(), String> {
    odbc_exec(conn, &format!("DROP TABLE IF EXISTS `{table}`"))?;
    odbc_exec(
        conn,
        &format!(
            "CREATE TABLE `{table}` (`id` BIGINT NOT NULL, `temperature` DOUBLE, PRIMARY KEY (`id`)) ENGINE=InnoDB"
        ),
    )
}

/// The upsert the direct path runs: the same statement shape rgsync's writer sends for
/// MariaDB, one row per statement, autocommit.
pub(crate) fn upsert_sql(table: &str) -> String {
    format!(
        "INSERT INTO `{table}` (`id`,`temperature`) VALUES (?,?) ON DUPLICATE KEY UPDATE `temperature`=VALUES(`temperature`)"
    )
}

/// Direct MariaDB upserts.
pub(crate) struct MariaDb {
    stmt: Prepared<StatementConnection<Connection<'static>>>,
}

impl MariaDb {
    pub(crate) fn connect(conn: &str, table: &str) -> Result<MariaDb, String> {
        let stmt = odbc(conn)?
            .into_prepared(&upsert_sql(table))
            .map_err(|e| format!("prepare: {e}"))?;
        Ok(MariaDb { stmt })
    }
}

impl Target for MariaDb {
    fn call(&mut self, id: u64, temp: f64) -> Result<(), String> {
        let id = id as i64;
        self.stmt
            .execute((&id, &temp))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// `HSET <prefix><id> temperature <temp>`.
pub(crate) struct RedisHset {
    con: redis::Connection,
    prefix: String,
}

impl RedisHset {
    pub(crate) fn connect(url: &str, prefix: &str) -> Result<RedisHset, String> {
        let con = redis::Client::open(url)
            .and_then(|c| c.get_connection())
            .map_err(|e| format!("redis {url}: {e}"))?;
        Ok(RedisHset {
            con,
            prefix: prefix.to_string(),
        })
    }
}

impl Target for RedisHset {
    fn call(&mut self, id: u64, temp: f64) -> Result<(), String> {
        redis::cmd("HSET")
            .arg(format!("{}{id}", self.prefix))
            .arg("temperature")
            .arg(format!("{temp:.2}"))
            .query::<i64>(&mut self.con)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// An HTTP/1.1 keep-alive client POSTing `id=..&temp=..` to one path.
pub(crate) struct Http {
    out: TcpStream,
    input: BufReader<TcpStream>,
    addr: String,
    path: String,
    line: String,
    body: Vec<u8>,
}

impl Http {
    pub(crate) fn connect(addr: &str, path: &str) -> Result<Http, String> {
        let out = TcpStream::connect(addr).map_err(|e| format!("http {addr}: {e}"))?;
        out.set_nodelay(true).map_err(|e| e.to_string())?;
        out.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let input = BufReader::new(out.try_clone().map_err(|e| e.to_string())?);
        Ok(Http {
            out,
            input,
            addr: addr.to_string(),
            path: path.to_string(),
            line: String::new(),
            body: Vec::new(),
        })
    }
}

/// Reads one HTTP/1.1 response head from `input`; returns (status, content length).
pub(crate) fn read_head(
    input: &mut impl BufRead,
    line: &mut String,
) -> Result<(u16, usize), String> {
    line.clear();
    if input.read_line(line).map_err(|e| e.to_string())? == 0 {
        return Err("connection closed".into());
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {line:?}"))?;
    let mut len = 0;
    loop {
        line.clear();
        if input.read_line(line).map_err(|e| e.to_string())? == 0 {
            return Err("connection closed in headers".into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            return Ok((status, len));
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().map_err(|_| format!("bad length {v:?}"))?;
            }
        }
    }
}

impl Target for Http {
    fn call(&mut self, id: u64, temp: f64) -> Result<(), String> {
        let body = format!("id={id}&temp={temp:.2}");
        let req = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            self.path,
            self.addr,
            body.len()
        );
        self.out
            .write_all(req.as_bytes())
            .map_err(|e| e.to_string())?;
        let (status, len) = read_head(&mut self.input, &mut self.line)?;
        self.body.resize(len, 0);
        self.input
            .read_exact(&mut self.body)
            .map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&self.body)
            ));
        }
        Ok(())
    }
}

/// A small, fast PRNG (splitmix64) for ids and temperatures; one per VU.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A user id in `[0, 1e6)`.
    pub(crate) fn user(&mut self) -> u64 {
        self.next_u64() % 1_000_000
    }

    /// A temperature like the demo's: 36.7 + rand·5.
    pub(crate) fn temperature(&mut self) -> f64 {
        36.7 + (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 5.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_ranges() {
        let mut r = Rng::new(7);
        let mut distinct = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let u = r.user();
            assert!(u < 1_000_000);
            distinct.insert(u);
            let t = r.temperature();
            assert!((36.7..41.7).contains(&t), "{t}");
        }
        assert!(distinct.len() > 9_900);
    }

    #[test]
    fn http_head() {
        let mut input: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: y\r\n\r\nok";
        let mut line = String::new();
        assert_eq!(read_head(&mut input, &mut line).unwrap(), (200, 2));
        let mut bad: &[u8] = b"garbage\r\n\r\n";
        assert!(read_head(&mut bad, &mut line).is_err());
        let mut closed: &[u8] = b"";
        assert!(read_head(&mut closed, &mut line).is_err());
    }

    #[test]
    fn upsert_statement() {
        assert_eq!(
            upsert_sql("t"),
            "INSERT INTO `t` (`id`,`temperature`) VALUES (?,?) ON DUPLICATE KEY UPDATE `temperature`=VALUES(`temperature`)"
        );
    }
}
