//! CPU accounting of a run: the CPU seconds each measured process (and the load generator
//! itself) used, read from `/proc/<pid>/stat` before and after.

/// CPU seconds (user + system, all threads) a process has used, from `/proc/<pid>/stat`
/// (clock ticks of 1/100 s, Linux's `USER_HZ`).
pub(crate) fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu(&stat)
}

fn parse_cpu(stat: &str) -> Option<f64> {
    // The command name is in parentheses and may hold spaces: fields count from after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state(3) ppid(4) ... utime is field 14, stime 15 → indices 11, 12 here.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Parses `name=pid,name=pid`.
pub(crate) fn parse_pids(s: &str) -> Result<Vec<(String, u32)>, String> {
    s.split(',')
        // An empty pid (a process the script could not find) is skipped.
        .filter(|p| !p.trim().is_empty() && !p.trim_end().ends_with('='))
        .map(|p| {
            let (n, pid) = p
                .split_once('=')
                .ok_or_else(|| format!("--cpu: want name=pid, got '{p}'"))?;
            let pid = pid
                .trim()
                .parse()
                .map_err(|_| format!("--cpu: '{pid}' is not a pid"))?;
            Ok((n.trim().to_string(), pid))
        })
        .collect()
}

/// The processes whose CPU time is measured: the ones given, and the load generator.
pub(super) fn cpu_procs(given: &[(String, u32)]) -> Vec<(String, String)> {
    let mut procs: Vec<(String, String)> = given
        .iter()
        .map(|(n, p)| (n.clone(), p.to_string()))
        .collect();
    procs.push(("load generator".into(), "self".into()));
    procs
}

/// Each process's CPU seconds so far (`None` for one that is gone).
pub(super) fn cpu_now(procs: &[(String, String)]) -> Vec<Option<f64>> {
    procs.iter().map(|(_, p)| cpu_seconds(p)).collect()
}

/// The CPU seconds each process used between two readings (where both have it).
pub(super) fn cpu_used(
    procs: &[(String, String)],
    before: &[Option<f64>],
    after: &[Option<f64>],
) -> Vec<(String, f64)> {
    procs
        .iter()
        .zip(before.iter().zip(after))
        .filter_map(|((n, _), (a, b))| Some((n.clone(), (*b)? - (*a)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_pids() {
        let stat = "123 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 4";
        assert_eq!(parse_cpu(stat), Some(3.0));
        assert!(cpu_seconds("self").is_some());
        assert_eq!(
            parse_pids("redis-server=12, mariadbd=34").unwrap(),
            vec![
                ("redis-server".to_string(), 12),
                ("mariadbd".to_string(), 34)
            ]
        );
        assert!(parse_pids("x").is_err());
        assert!(parse_pids("").unwrap().is_empty());
        assert_eq!(parse_pids("a=,b=2").unwrap(), vec![("b".to_string(), 2)]);
    }

    #[test]
    fn cpu_accounting() {
        let procs = vec![
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
        ];
        let used = cpu_used(&procs, &[Some(1.0), Some(2.0)], &[Some(1.5), None]);
        assert_eq!(used, vec![("a".to_string(), 0.5)]);
        assert_eq!(
            cpu_procs(&[]),
            vec![("load generator".to_string(), "self".to_string())]
        );
        assert!(cpu_now(&cpu_procs(&[]))[0].is_some());
    }
}
