//! The small application of the demo, in Rust: HTTP/1.1 keep-alive, one thread per
//! connection, each holding its own backend connections (opened on first use).
//!
//! `POST /db` upserts straight into MariaDB; `POST /wbredis` does `HSET user:<id>` on the
//! Redis with the write-behind job; `POST /redis` does `HSET hash:<id>` on a plain Redis;
//! `POST /null` answers without a backend (the app's own ceiling). The body is
//! `id=<u64>&temp=<f64>`.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;

use crate::targets::{MariaDb, RedisHset, Target};

/// Where the app's endpoints write.
#[derive(Debug, Clone)]
pub(crate) struct App {
    /// Address to listen on (`127.0.0.1:0` for any free port).
    pub(crate) listen: String,
    /// Where to write the port listened on, once listening.
    pub(crate) port_file: Option<PathBuf>,
    /// MariaDB's ODBC connection string (`/db`).
    pub(crate) odbc: String,
    /// The table `/db` upserts into.
    pub(crate) table: String,
    /// The Redis with the write-behind job (`/wbredis`).
    pub(crate) wb_redis: String,
    /// The plain Redis (`/redis`).
    pub(crate) plain_redis: String,
}

/// Parses `id=..&temp=..`.
pub(crate) fn parse_body(body: &str) -> Result<(u64, f64), String> {
    let mut id = None;
    let mut temp = None;
    for kv in body.trim().split('&') {
        match kv.split_once('=') {
            Some(("id", v)) => id = v.parse::<u64>().ok(),
            Some(("temp", v)) => temp = v.parse::<f64>().ok(),
            _ => {}
        }
    }
    match (id, temp) {
        (Some(i), Some(t)) if t.is_finite() => Ok((i, t)),
        _ => Err(format!("want id=<integer>&temp=<number>, got {body:?}")),
    }
}

struct Request {
    method: String,
    path: String,
    body: String,
    close: bool,
}

/// Reads one request; `None` at a clean end of the connection.
fn read_request(input: &mut impl BufRead) -> Result<Option<Request>, String> {
    let mut line = String::new();
    if input.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let version = parts.next().unwrap_or("").to_string();
    let mut len = 0usize;
    let mut close = version == "HTTP/1.0";
    loop {
        line.clear();
        if input.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("connection closed in headers".into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                len = v.parse().map_err(|_| format!("bad content-length {v:?}"))?;
                if len > 64 * 1024 {
                    return Err("body too large".into());
                }
            } else if k.eq_ignore_ascii_case("connection") {
                close = v.eq_ignore_ascii_case("close");
            }
        }
    }
    let mut body = vec![0; len];
    input.read_exact(&mut body).map_err(|e| e.to_string())?;
    Ok(Some(Request {
        method,
        path,
        body: String::from_utf8_lossy(&body).to_string(),
        close,
    }))
}

fn respond(out: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let msg = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    out.write_all(msg.as_bytes())
}

#[derive(Default)]
struct Backends {
    db: Option<MariaDb>,
    wb: Option<RedisHset>,
    plain: Option<RedisHset>,
}

fn handle(app: &App, backends: &mut Backends, req: &Request) -> (u16, String) {
    if req.method != "POST" {
        return (404, "POST /db, /wbredis, /redis or /null".into());
    }
    let (id, temp) = match parse_body(&req.body) {
        Ok(x) => x,
        Err(e) => return (400, e),
    };
    let result = match req.path.as_str() {
        "/null" => Ok(()),
        "/db" => call(
            &mut backends.db,
            || MariaDb::connect(&app.odbc, &app.table),
            id,
            temp,
        ),
        "/wbredis" => call(
            &mut backends.wb,
            || RedisHset::connect(&app.wb_redis, "user:"),
            id,
            temp,
        ),
        "/redis" => call(
            &mut backends.plain,
            || RedisHset::connect(&app.plain_redis, "hash:"),
            id,
            temp,
        ),
        _ => return (404, "POST /db, /wbredis, /redis or /null".into()),
    };
    match result {
        Ok(()) => (200, "ok".into()),
        Err(e) => (500, e),
    }
}

/// Calls the backend, connecting first if needed; a failed call drops the connection so the
/// next request reconnects.
fn call<T: Target>(
    slot: &mut Option<T>,
    connect: impl FnOnce() -> Result<T, String>,
    id: u64,
    temp: f64,
) -> Result<(), String> {
    if slot.is_none() {
        *slot = Some(connect()?);
    }
    let r = slot.as_mut().map_or(Ok(()), |t| t.call(id, temp));
    if r.is_err() {
        *slot = None;
    }
    r
}

fn serve_connection(app: &App, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut input = BufReader::new(read_half);
    let mut out = stream;
    let mut backends = Backends::default();
    loop {
        match read_request(&mut input) {
            Ok(Some(req)) => {
                let (status, body) = handle(app, &mut backends, &req);
                if respond(&mut out, status, &body).is_err() || req.close {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                let _ = respond(&mut out, 400, &e);
                return;
            }
        }
    }
}

/// Serves until the process is killed.
pub(crate) fn serve(app: App) -> Result<(), String> {
    let listener = TcpListener::bind(&app.listen).map_err(|e| format!("{}: {e}", app.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    if let Some(p) = &app.port_file {
        std::fs::write(p, addr.port().to_string()).map_err(|e| e.to_string())?;
    }
    println!("http app listening on {addr}");
    let app = std::sync::Arc::new(app);
    for stream in listener.incoming() {
        match stream {
            Ok(s) => {
                let app = app.clone();
                std::thread::spawn(move || serve_connection(&app, s));
            }
            Err(e) => eprintln!("accept: {e}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::Http;

    #[test]
    fn bodies() {
        assert_eq!(parse_body("id=12&temp=37.5").unwrap(), (12, 37.5));
        assert_eq!(parse_body("temp=1&id=3\r\n").unwrap(), (3, 1.0));
        assert!(parse_body("id=x&temp=1").is_err());
        assert!(parse_body("id=1").is_err());
        assert!(parse_body("id=1&temp=NaN").is_err());
    }

    /// The app's `/null` endpoint over real sockets with the load generator's client:
    /// keep-alive, several requests per connection, errors as 4xx.
    #[test]
    fn null_endpoint_round_trip() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let app = App {
            listen: addr.clone(),
            port_file: None,
            odbc: String::new(),
            table: "t".into(),
            wb_redis: "redis://127.0.0.1:1/".into(),
            plain_redis: "redis://127.0.0.1:1/".into(),
        };
        std::thread::spawn(move || {
            for s in listener.incoming().take(3) {
                let app = app.clone();
                std::thread::spawn(move || serve_connection(&app, s.unwrap()));
            }
        });
        let mut c = Http::connect(&addr, "/null").unwrap();
        for i in 0..100 {
            c.call(i, 37.0).unwrap();
        }
        let mut bad = Http::connect(&addr, "/nope").unwrap();
        let e = bad.call(1, 1.0).unwrap_err();
        assert!(e.contains("404"), "{e}");
        // A backend that is down is a 500 with the reason, and the connection stays usable.
        let e = bad_path(&addr, "/redis");
        assert!(e.contains("500"), "{e}");
    }

    fn bad_path(addr: &str, path: &str) -> String {
        let mut c = Http::connect(addr, path).unwrap();
        c.call(1, 1.0).unwrap_err()
    }
}
