//! Credentials stay out of what a server shows or writes about its commands: `RGSYNC.ADD`'s
//! connection string is redacted from SLOWLOG and MONITOR, and a broken job line of the
//! config file is logged without the password. Real redis-server, SQLite (no database to
//! start).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use gears_testkit::db::sqlite;
use gears_testkit::rgsync::{self, Job};
use gears_testkit::{ok, query, scratch, Cluster};

const PASSWORD: &str = "Sekr3t";

fn add_job(conn: &str) -> Job {
    Job::new("users", "user:{id}", "users", conn)
        .columns("name")
        .opt("CREATE_TABLE", "yes")
}

/// The last `n` entries of the server's SLOWLOG, as text.
fn slowlog(con: &mut redis::Connection, n: usize) -> String {
    format!("{:?}", ok(con, &["SLOWLOG", "GET", &n.to_string()]))
}

/// A malformed `RGSYNC.ADD`: the connection string as an unpaired last word.
fn malformed(conn: &str) -> Vec<String> {
    let mut bad = add_job(conn).args()[..8].to_vec();
    bad.push(conn.to_string());
    bad
}

#[test]
fn rgsync_add_connection_is_not_in_slowlog() {
    let server = rgsync::server().name("slowlog").start();
    let conn = format!("{};Uid=app;PWD={PASSWORD}", sqlite(&server.dir));
    let mut con = server.conn();
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "slowlog-log-slower-than", "0"])
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query(&mut con).unwrap();
    add_job(&conn).add(&mut con);
    // A malformed command (the connection string as an unpaired last word) is logged too.
    assert!(query(&mut con, &malformed(&conn)).is_err());
    // The job is really there, with its real connection string (masked when listed).
    let list = format!("{:?}", query(&mut con, &["RGSYNC.LIST"]).unwrap());
    assert!(
        list.contains("PWD=***") && !list.contains(PASSWORD),
        "{list}"
    );
    let slowlog = slowlog(&mut con, 100);
    assert!(
        !slowlog.to_lowercase().contains(&PASSWORD.to_lowercase()),
        "password in SLOWLOG: {slowlog}"
    );
    // Not vacuous: both RGSYNC.ADD were logged, with the job name and the rest redacted.
    assert_eq!(slowlog.matches("RGSYNC.ADD").count(), 2, "{slowlog}");
    assert!(slowlog.contains("users"), "job name not kept: {slowlog}");
    assert!(slowlog.contains("(redacted)"), "{slowlog}");
}

#[test]
fn rgsync_add_connection_is_not_in_monitor() {
    let server = rgsync::server().name("monitor").start();
    let conn = format!("{};Uid=app;PWD={PASSWORD}", sqlite(&server.dir));
    let mut monitor = Monitor::start(server.port);
    let mut con = server.conn();
    add_job(&conn).add(&mut con);
    assert!(query(&mut con, &malformed(&conn)).is_err());
    // A command after both: once MONITOR shows it, everything before it has been shown.
    let _: String = redis::cmd("PING").arg("after-add").query(&mut con).unwrap();
    assert!(
        monitor.read_until("after-add", Duration::from_secs(5)),
        "{}",
        monitor.text()
    );
    // And a short while more, in case anything else comes.
    monitor.read_until("never printed", Duration::from_millis(300));
    let text = monitor.text();
    assert!(
        !text.to_lowercase().contains(&PASSWORD.to_lowercase()),
        "password in MONITOR: {text}"
    );
    // Not vacuous: MONITOR showed both RGSYNC.ADD, the job name kept, the rest redacted.
    let adds: Vec<&str> = text.lines().filter(|l| l.contains("RGSYNC.ADD")).collect();
    assert_eq!(adds.len(), 2, "{text}");
    for line in &adds {
        assert!(
            line.contains("\"users\"") && line.contains("(redacted)"),
            "{line}"
        );
    }
}

/// A MONITOR connection, read into a buffer.
struct Monitor {
    stream: TcpStream,
    seen: Vec<u8>,
}

impl Monitor {
    fn start(port: u16) -> Monitor {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut m = Monitor {
            stream,
            seen: Vec::new(),
        };
        m.stream.write_all(b"MONITOR\r\n").unwrap();
        assert!(m.read_until("+OK", Duration::from_secs(5)));
        m
    }

    /// Reads until `what` was seen or `timeout` passed; whether it was seen.
    fn read_until(&mut self, what: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while !self.text().contains(what) && Instant::now() < deadline {
            if let Ok(n) = self.stream.read(&mut buf) {
                self.seen.extend_from_slice(&buf[..n]);
            }
        }
        self.text().contains(what)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }
}

/// On a Redis Cluster, `RGSYNC.ADD` sent to one master is applied by the others through the
/// same handler (`RM_Call`): redacted there too, in MONITOR and SLOWLOG.
#[test]
fn fanned_out_rgsync_add_is_redacted_on_every_master() {
    let node = rgsync::server()
        .cluster(15_000)
        .args(&["--slowlog-log-slower-than", "0"]);
    let cluster = Cluster::start(&node, 3, 0);
    let nodes = &cluster.nodes;
    let mut monitors: Vec<Monitor> = nodes.iter().map(|n| Monitor::start(n.port)).collect();
    let conn = format!("{};PWD={PASSWORD}", sqlite(&nodes[0].dir));
    let reply = add_job(&conn).add(&mut nodes[0].conn());
    assert_eq!(
        format!("{reply:?}").matches("OK").count(),
        3,
        "every master added the job: {reply:?}"
    );
    for (n, monitor) in nodes.iter().zip(&mut monitors) {
        let mut con = n.conn();
        let _: String = redis::cmd("PING").arg("after-add").query(&mut con).unwrap();
        assert!(monitor.read_until("after-add", Duration::from_secs(5)));
        let text = monitor.text();
        let slowlog = slowlog(&mut con, 1000);
        for (what, shown) in [("MONITOR", &text), ("SLOWLOG", &slowlog)] {
            assert!(
                !shown.to_lowercase().contains(&PASSWORD.to_lowercase()),
                "port {}: password in {what}: {shown}",
                n.port
            );
        }
        let list = format!("{:?}", query(&mut con, &["RGSYNC.LIST"]).unwrap());
        assert!(list.contains("PWD=***"), "port {}: {list}", n.port);
    }
    // Not vacuous: every master showed the command (the others as it came through the
    // cluster bus), redacted.
    for (n, monitor) in nodes.iter().zip(&monitors) {
        let text = monitor.text();
        assert!(
            text.lines()
                .any(|l| l.contains("RGSYNC.ADD") && l.contains("(redacted)")),
            "port {}: {text}",
            n.port
        );
    }
}

#[test]
fn broken_config_file_line_does_not_log_the_password() {
    let dir = scratch("config-file");
    let conn = format!(
        "Driver={{SQLite3}};Database={}/app.db;PWD={PASSWORD}",
        dir.display()
    );
    // Each line is broken so that the error is about a word holding the connection string.
    let cases = [
        // the connection string as an unpaired last word (CONNECTION forgotten)
        format!("users KEY user:{{id}} TABLE users \"{conn}\""),
        // as an option name (upper-cased in the message)
        format!("users KEY user:{{id}} TABLE users CONNECTION x \"{conn}\" y"),
        // as the table
        format!("users KEY user:{{id}} TABLE \"{conn}\" CONNECTION x"),
        // as an option's value
        format!("users KEY user:{{id}} TABLE users CONNECTION x BATCH \"{conn}\""),
        // as the columns
        format!("users KEY user:{{id}} TABLE users CONNECTION x COLUMNS \"{conn}\""),
    ];
    for (i, line) in cases.iter().enumerate() {
        let file = dir.join(format!("rgsync-{i}.conf"));
        std::fs::write(&file, format!("# jobs\n{line}\n")).unwrap();
        let started = rgsync::server()
            .name(&format!("config-file-{i}"))
            .module_args(&["rgsync.config".as_ref(), file.as_os_str()])
            .try_start();
        let Err(text) = started else {
            panic!("case {i}: the server started");
        };
        assert!(
            text.contains("rgsync:") && text.contains("line 2"),
            "case {i}: the error was not logged:\n{text}"
        );
        assert!(
            !text.to_lowercase().contains(&PASSWORD.to_lowercase()),
            "case {i}: password in the log:\n{text}"
        );
    }
}
