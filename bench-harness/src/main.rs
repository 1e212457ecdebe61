//! `gears-bench`: the benchmark report's load generator, HTTP app and report writer.
//! `scripts/bench-report.sh` drives it; each subcommand also runs on its own:
//!
//! ```text
//! gears-bench spike --scenario proto-db --target mariadb [--odbc CONN] [--table T] [--db-table T] --out DIR
//! gears-bench spike --scenario proto-wb --target redis --redis URL --prefix user: \
//!     --rgsync-job users --db-table bench_wb --out DIR          # samples RGSYNC.STATUS each second
//! gears-bench spike --scenario http-db --target http --http 127.0.0.1:PORT --path /db --out DIR
//!     [--stages quick|full|HOLD,PEAK_HOLD,RAMP] [--drain-timeout SECS] [--cpu name=pid,...]
//! gears-bench http-app --wb-redis URL --plain-redis URL [--odbc CONN] [--table T]
//!     [--listen 127.0.0.1:0] [--port-file F]
//! gears-bench drain --redis URL --job users --n 50000 [--prefix user:] --out FILE
//! gears-bench reset-table [--odbc CONN] --table T
//! gears-bench report --dir bench-results [--criterion target/criterion]
//! ```

mod chart;
mod drain;
mod http_app;
mod report;
mod sampler;
mod spike;
mod stages;
mod stats;
mod targets;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// `--key value` and `--flag` arguments.
struct Args {
    map: HashMap<String, String>,
}

impl Args {
    fn parse(args: &[String]) -> Result<Args, String> {
        let mut map = HashMap::new();
        let mut i = 0;
        while i < args.len() {
            let k = args[i]
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument '{}'", args[i]))?;
            match args.get(i + 1) {
                Some(v) if !v.starts_with("--") => {
                    map.insert(k.to_string(), v.clone());
                    i += 2;
                }
                _ => {
                    map.insert(k.to_string(), String::new());
                    i += 1;
                }
            }
        }
        Ok(Args { map })
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.map.get(k).map(String::as_str)
    }

    fn need(&self, k: &str) -> Result<String, String> {
        self.get(k)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| format!("missing --{k}"))
    }

    fn or(&self, k: &str, default: &str) -> String {
        self.get(k)
            .filter(|v| !v.is_empty())
            .unwrap_or(default)
            .to_string()
    }

    fn num(&self, k: &str, default: u64) -> Result<u64, String> {
        match self.get(k) {
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{k}: '{v}' is not a number")),
            None => Ok(default),
        }
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let result = match argv.split_first() {
        Some((cmd, rest)) => Args::parse(rest).and_then(|a| dispatch(cmd, &a)),
        None => Err("usage: gears-bench spike|http-app|drain|reset-table|report [--options] (see the source's header)".into()),
    };
    if let Err(e) = result {
        eprintln!("gears-bench: {e}");
        std::process::exit(1);
    }
}

/// The spike run the arguments describe.
fn spike_of(a: &Args, odbc: &str) -> Result<spike::Spike, String> {
    let kind = match a.need("target")?.as_str() {
        "mariadb" => spike::Kind::MariaDb {
            odbc: odbc.to_string(),
            table: a.or("table", "bench_direct"),
        },
        "redis" => spike::Kind::Redis {
            url: a.need("redis")?,
            prefix: a.or("prefix", "user:"),
        },
        "http" => spike::Kind::Http {
            addr: a.need("http")?,
            path: a.need("path")?,
        },
        other => return Err(format!("--target {other}: want mariadb, redis or http")),
    };
    let rgsync = a.get("rgsync-job").map(|job| {
        (
            a.or("rgsync-redis", a.get("redis").unwrap_or("")),
            job.to_string(),
        )
    });
    if rgsync.as_ref().is_some_and(|(url, _)| url.is_empty()) {
        return Err("--rgsync-job needs --rgsync-redis (or --redis)".into());
    }
    Ok(spike::Spike {
        scenario: a.need("scenario")?,
        kind,
        profile: stages::Profile::parse(&a.or("stages", "quick"))?,
        db: a
            .get("db-table")
            .filter(|t| !t.is_empty())
            .map(|t| (odbc.to_string(), t.to_string())),
        rgsync,
        drain_timeout: Duration::from_secs(a.num("drain-timeout", 120)?),
        out_dir: PathBuf::from(a.need("out")?),
        cpu: spike::parse_pids(a.get("cpu").unwrap_or(""))?,
    })
}

fn dispatch(cmd: &str, a: &Args) -> Result<(), String> {
    let odbc = a.or("odbc", targets::MARIADB);
    match cmd {
        "spike" => spike::run_and_write(&spike_of(a, &odbc)?),
        "http-app" => http_app::serve(http_app::App {
            listen: a.or("listen", "127.0.0.1:0"),
            port_file: a.get("port-file").map(PathBuf::from),
            odbc,
            table: a.or("table", "bench_http_direct"),
            wb_redis: a.need("wb-redis")?,
            plain_redis: a.need("plain-redis")?,
        }),
        "drain" => drain::run(&drain::Drain {
            redis: a.need("redis")?,
            job: a.need("job")?,
            prefix: a.or("prefix", "user:"),
            n: a.num("n", 50_000)?,
            timeout: Duration::from_secs(a.num("timeout", 300)?),
            out: PathBuf::from(a.need("out")?),
        }),
        "reset-table" => targets::reset_table(&odbc, &a.need("table")?),
        "report" => {
            let dir = PathBuf::from(a.need("dir")?);
            let crit = a.get("criterion").map(PathBuf::from);
            let path = report::write(&dir, crit.as_deref())?;
            println!("report: {}", path.display());
            Ok(())
        }
        other => Err(format!("unknown command '{other}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args() {
        let v: Vec<String> = ["--a", "1", "--flag", "--b", "x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let a = Args::parse(&v).unwrap();
        assert_eq!(a.get("a"), Some("1"));
        assert_eq!(a.get("flag"), Some(""));
        assert_eq!(a.need("b").unwrap(), "x");
        assert!(a.need("flag").is_err());
        assert_eq!(a.num("a", 0).unwrap(), 1);
        assert_eq!(a.or("zz", "d"), "d");
        assert!(Args::parse(&["x".to_string()]).is_err());
    }

    fn parse_line(line: &str) -> Args {
        let v: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        Args::parse(&v).unwrap()
    }

    #[test]
    fn spike_arguments() {
        let s = spike_of(
            &parse_line("--scenario proto-wb --target redis --redis redis://h/ --rgsync-job bench --db-table t --out d --cpu a=1"),
            "DSN",
        )
        .unwrap();
        assert_eq!(s.scenario, "proto-wb");
        assert!(
            matches!(&s.kind, spike::Kind::Redis { url, prefix } if url == "redis://h/" && prefix == "user:")
        );
        assert_eq!(
            s.rgsync,
            Some(("redis://h/".to_string(), "bench".to_string()))
        );
        assert_eq!(s.db, Some(("DSN".to_string(), "t".to_string())));
        assert_eq!(
            (s.drain_timeout, s.cpu),
            (Duration::from_secs(120), vec![("a".to_string(), 1)])
        );
        assert_eq!(s.profile, stages::Profile::quick());
        let http = spike_of(&parse_line("--scenario h --target http --http x:1 --path /db --out d --rgsync-redis r --rgsync-job j"), "DSN").unwrap();
        assert_eq!(http.rgsync, Some(("r".to_string(), "j".to_string())));
        assert_eq!(http.db, None);
        for bad in [
            "--scenario s --target http --http x:1 --path /db --out d --rgsync-job j",
            "--scenario s --target ftp --out d",
            "--scenario s --target mariadb",
        ] {
            assert!(spike_of(&parse_line(bad), "DSN").is_err(), "{bad}");
        }
    }
}
