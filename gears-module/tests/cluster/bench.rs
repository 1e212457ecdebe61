//! The cluster benchmark (ignored by default; `scripts/bench-cluster.sh` runs it on a release
//! build): one run measures
//! - `count()` over N keys on 3 masters ÷ the same on one standalone server;
//! - the round trip of an empty distributed run;
//! - `repartition` shuffle throughput (MB/s, records/s);
//! - one message per record (1.x) ÷ batched messages.

use std::time::{Duration, Instant};

use gears_testkit::{run, show, Cluster, Server};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn load(node: &Server, keys: impl Iterator<Item = String>) {
    let mut con = node.conn();
    let mut pipe = redis::pipe();
    let mut n = 0;
    for k in keys {
        pipe.cmd("SET").arg(&k).arg("v").ignore();
        n += 1;
        if n % 20_000 == 0 {
            pipe.query::<()>(&mut con).expect("load");
            pipe = redis::pipe();
        }
    }
    if n % 20_000 != 0 {
        pipe.query::<()>(&mut con).expect("load");
    }
}

fn load_cluster(cluster: &Cluster, keys: &[String]) {
    let mut parts: Vec<Vec<String>> = vec![Vec::new(); cluster.nodes.len()];
    let table = cluster.slots();
    for k in keys {
        parts[cluster.master_in(&table, gears::slot::key_slot(k.as_bytes()))].push(k.clone());
    }
    std::thread::scope(|s| {
        for (i, part) in parts.into_iter().enumerate() {
            let node = &cluster.nodes[i];
            s.spawn(move || load(node, part.into_iter()));
        }
    });
}

/// Best of `runs` timings of `RG.RUN args...`; checks the reply each time.
fn best(con: &mut redis::Connection, args: &[&str], runs: usize, expect: &str) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            let reply = run(con, args);
            let took = t.elapsed();
            assert_eq!(reply, expect, "{args:?}");
            took
        })
        .min()
        .unwrap_or_default()
}

fn counters(cluster: &Cluster) -> (i64, i64) {
    cluster.nodes.iter().fold((0, 0), |(m, b), n| {
        let info: Vec<redis::Value> = redis::cmd("RG.INFOCLUSTER")
            .query(&mut n.conn())
            .expect("infocluster");
        let get = |name: &str| {
            info.windows(2)
                .find(|w| show(&w[0]) == name)
                .and_then(|w| match w[1] {
                    redis::Value::Int(i) => Some(i),
                    _ => None,
                })
                .unwrap_or(0)
        };
        (m + get("messagesSent"), b + get("bytesSent"))
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[test]
#[ignore = "benchmark: scripts/bench-cluster.sh"]
fn bench_cluster() {
    let keys = env("KEYS", 1_000_000);
    let empty_runs = env("EMPTY_RUNS", 2000);
    let cluster = Cluster::start(&crate::node(&[], 5000), 3, 0);
    let single = Server::start(crate::MODULE, &[]);
    let names: Vec<String> = (0..keys).map(|i| format!("key:{i}")).collect();
    let t = Instant::now();
    load(&single, names.iter().cloned());
    load_cluster(&cluster, &names);
    eprintln!("loaded {keys} keys in {:.1} s", t.elapsed().as_secs_f64());

    // count() over the keys: 3 masters vs one server.
    let expect = format!("[[{keys}],[]]");
    let args = ["RG.RUN", "count_keys", "ARGS", "key:*"];
    let mut sc = single.conn();
    let mut cc = cluster.nodes[0].conn();
    best(&mut sc, &args, 1, &expect);
    best(&mut cc, &args, 1, &expect);
    let standalone = best(&mut sc, &args, 3, &expect);
    let clustered = best(&mut cc, &args, 3, &expect);

    // The round trip of an empty distributed run (no records, every stage on every master).
    let empty = ["RG.RUN", "slow_count", "ARGS", "0"];
    best(&mut cc, &empty, 50, "[[0],[]]");
    let t = Instant::now();
    for _ in 0..empty_runs {
        assert_eq!(run(&mut cc, &empty), "[[0],[]]");
    }
    let empty_cluster = t.elapsed() / empty_runs as u32;
    let t = Instant::now();
    for _ in 0..empty_runs {
        assert_eq!(run(&mut sc, &empty), "[[0],[]]");
    }
    let empty_single = t.elapsed() / empty_runs as u32;

    // Shuffle alone: records made in memory on every shard (no keyspace read), each moved
    // to the owner of its key's slot; then the same with one message per record (1.x).
    let per_shard = env("SHUFFLE_RECORDS", 300_000);
    let size = env("RECORD_BYTES", 100);
    let per_record_n = env("PER_RECORD_RECORDS", 30_000);
    let shuffle = |con: &mut redis::Connection, n: usize| {
        let (n_s, size_s) = (n.to_string(), size.to_string());
        let args = ["RG.RUN", "shuffle_generated", "ARGS", &n_s, &size_s];
        let expect = format!("[[{}],[]]", 3 * n);
        best(con, &args, 1, &expect);
        let (m0, b0) = counters(&cluster);
        let took = best(con, &args, 3, &expect);
        let (m1, b1) = counters(&cluster);
        (took, (m1 - m0) / 3, (b1 - b0) / 3)
    };
    let (batched, batched_msgs, batched_bytes) = shuffle(&mut cc, per_shard);
    let (small, small_msgs, small_bytes) = shuffle(&mut cc, per_record_n);
    assert_eq!(
        run(&mut cc, &["RG.CONFIGSET", "ShuffleBatchBytes", "1"]),
        "[OK]"
    );
    let (per_record, pr_msgs, pr_bytes) = shuffle(&mut cc, per_record_n);
    run(&mut cc, &["RG.CONFIGSET", "ShuffleBatchBytes", "32768"]);
    // About 2/3 of the records cross shards (3 equal masters).
    let crossing = |n: usize| 2.0 * n as f64;

    println!("== cluster benchmark (3 masters on loopback, one run)");
    println!(
        "count() over {keys} keys: standalone {:.1} ms, 3 masters {:.1} ms, ratio {:.2} (goal <= 1.5)",
        ms(standalone),
        ms(clustered),
        clustered.as_secs_f64() / standalone.as_secs_f64()
    );
    println!(
        "empty distributed run: {:.3} ms round trip (mean of {empty_runs}, goal < 2 ms); standalone {:.3} ms",
        ms(empty_cluster),
        ms(empty_single)
    );
    let secs = batched.as_secs_f64();
    println!(
        "repartition shuffle: {} records of {size} bytes, ~{:.0} crossing shards, in {:.1} ms: \
         {:.1} MB/s and {:.0} records/s crossing ({batched_msgs} messages, {batched_bytes} bytes)",
        3 * per_shard,
        crossing(per_shard),
        ms(batched),
        batched_bytes as f64 / 1e6 / secs,
        crossing(per_shard) / secs,
    );
    println!(
        "one message per record (1.x style), {} records: {:.1} ms, {pr_msgs} messages, {pr_bytes} bytes; \
         batched: {:.1} ms, {small_msgs} messages, {small_bytes} bytes; per-record / batched = {:.1}x time, {:.1}x bytes",
        3 * per_record_n,
        ms(per_record),
        ms(small),
        per_record.as_secs_f64() / small.as_secs_f64(),
        pr_bytes as f64 / small_bytes.max(1) as f64
    );
}
