//! The wordcount example module inside a real redis-server: RG.RUN and the execution,
//! function and configuration commands, their error replies, and the INFO section.

use std::time::{Duration, Instant};

use gears_testkit::{assert_replies, eventually, run, Server};

const MODULE: &str = "gears_wordcount";

fn load_sample(con: &mut redis::Connection) {
    for (k, v) in [
        ("doc:1", "Redis keeps the data close"),
        ("doc:2", "close the loop"),
    ] {
        assert_eq!(run(con, &["SET", k, v]), "OK");
    }
    for (name, city, age) in [
        ("ann", "paris", "31"),
        ("bob", "rome", "45"),
        ("cid", "paris", "27"),
    ] {
        run(
            con,
            &["HSET", &format!("user:{name}"), "city", city, "age", age],
        );
    }
}

#[test]
fn run_flows_by_name() {
    let server = Server::start(MODULE, &[]);
    let mut con = server.conn();
    load_sample(&mut con);
    assert_replies(
        &mut con,
        &[
            (
                &["RG.RUN", "word_count"],
                "[[[close,2],[data,1],[keeps,1],[loop,1],[redis,1],[the,2]],[]]",
            ),
            (
                &["RG.RUN", "first_keys", "ARGS", "user:*", "2"],
                "[[user:ann,user:bob],[]]",
            ),
        ],
    );
    // Errors of user code are data: the panicking record is dropped, the run goes on.
    assert_eq!(
        run(&mut con, &["RG.RUN", "faulty"]),
        "[[0,10,20,40],[map: panicked: three is not allowed]]"
    );
}

/// Batch reads through the module key API: every key type with its value, pages spanning
/// thousands of keys, a large (hashtable-encoded) hash, glob patterns, and a key whose time
/// to live has passed but that Redis has not deleted yet (invisible, as to SCAN).
#[test]
fn keys_reader_reads_every_type_natively() {
    let server = Server::start(MODULE, &[]);
    let mut con = server.conn();
    run(&mut con, &["SET", "t:string", "hello"]);
    run(&mut con, &["SET", "t:int", "42"]);
    run(&mut con, &["HSET", "t:hash", "b", "2", "a", "1"]);
    run(&mut con, &["RPUSH", "t:list", "x", "y", "x"]);
    run(&mut con, &["SADD", "t:set", "q", "p"]);
    run(&mut con, &["ZADD", "t:zset", "2", "two", "1", "one"]);
    run(&mut con, &["XADD", "t:stream", "1-1", "f", "v"]);
    assert_eq!(
        run(&mut con, &["RG.RUN", "describe_keys", "ARGS", "t:*"]),
        "[[t:hash hash 2 fields: a=1,b=2,t:int string 42,t:list list x,y,x,t:set set p,q,\
         t:stream stream f=v,t:string string hello,t:zset zset one:1,two:2],[]]"
    );
    // Full glob syntax, keys only.
    assert_eq!(
        run(&mut con, &["RG.RUN", "key_names", "ARGS", "t:[hl]*"]),
        "[[t:hash,t:list],[]]"
    );

    // A hash with 300 fields is stored as a hashtable: all fields are read.
    let mut hset = vec!["HSET".to_string(), "big:hash".into()];
    for i in 0..300 {
        hset.push(format!("f{i:03}"));
        hset.push(i.to_string());
    }
    let args: Vec<&str> = hset.iter().map(String::as_str).collect();
    run(&mut con, &args);
    let big = run(&mut con, &["RG.RUN", "describe_keys", "ARGS", "big:*"]);
    assert!(
        big.starts_with("[[big:hash hash 300 fields: f000=0,f001=1,"),
        "{big}"
    );
    assert!(big.ends_with("f299=299],[]]"), "{big}");

    // Thousands of keys over many pages: each exactly once.
    let n = 5000;
    for i in 0..n {
        run(
            &mut con,
            &["HSET", &format!("user:{i}"), "city", &format!("c{}", i % 7)],
        );
    }
    let names = run(&mut con, &["RG.RUN", "key_names", "ARGS", "user:*"]);
    assert_eq!(names.matches("user:").count(), n, "{names}");
    let described = run(&mut con, &["RG.RUN", "describe_keys", "ARGS", "user:*"]);
    assert_eq!(described.matches(" hash 1 fields: city=c").count(), n);

    // Expired but not yet deleted: skipped.
    run(&mut con, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    run(&mut con, &["SET", "t:gone", "x", "PX", "1"]);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        run(&mut con, &["RG.RUN", "key_names", "ARGS", "t:g*"]),
        "[[],[]]"
    );
    assert_eq!(run(&mut con, &["DBSIZE"]), (n + 9).to_string());
}

#[test]
fn bad_requests_are_clear_errors() {
    let server = Server::start(MODULE, &[]);
    let mut con = server.conn();
    assert_replies(
        &mut con,
        &[
            (
                &["RG.RUN"],
                "ERR(wrong number of arguments for 'RG.RUN' command)",
            ),
            (&["RG.RUN", "nope"], "ERR(unknown function 'nope')"),
            (
                &["RG.RUN", "word_count", "ARGS", "x"],
                "ERR(function 'word_count' takes no ARGS)",
            ),
            (
                &["RG.RUN", "first_keys", "ARGS", "user:*", "many"],
                "ERR(limit must be a number, got 'many')",
            ),
        ],
    );
    assert!(run(&mut con, &["RG.RUN", "word_count", "BOGUS"])
        .starts_with("ERR(unexpected argument 'BOGUS'"));
    assert_replies(
        &mut con,
        &[
            (
                &["RG.GETRESULTS", "nope"],
                "ERR(execution plan does not exist)",
            ),
            (
                &["RG.DROPEXECUTION", "nope"],
                "ERR(execution plan does not exist)",
            ),
            (
                &["RG.ABORTEXECUTION", "nope"],
                "ERR(execution does not exist)",
            ),
            (
                &["RG.GETEXECUTION", "nope"],
                "ERR(execution plan does not exist)",
            ),
        ],
    );
    assert!(run(&mut con, &["RG.GETEXECUTION", "x", "SIDEWAYS"]).starts_with("ERR(unknown mode"));
    assert!(run(&mut con, &["RG.GETRESULTS"]).starts_with("ERR(wrong number of arguments"));
    assert!(run(&mut con, &["RG.CONFIGSET", "MaxExecutions"])
        .starts_with("ERR(wrong number of arguments"));
    // Inside MULTI only UNBLOCKING runs are possible.
    assert_replies(
        &mut con,
        &[(&["MULTI"], "OK"), (&["RG.RUN", "word_count"], "QUEUED")],
    );
    let exec = run(&mut con, &["EXEC"]);
    assert!(
        exec.contains("can not run a blocking execution inside MULTI/Lua"),
        "{exec}"
    );
    assert_replies(
        &mut con,
        &[
            (&["MULTI"], "OK"),
            (&["RG.RUN", "word_count", "UNBLOCKING"], "QUEUED"),
        ],
    );
    let exec = run(&mut con, &["EXEC"]);
    assert!(
        exec.starts_with(&format!("[{}-", "0".repeat(40))),
        "the UNBLOCKING run replied its id: {exec}"
    );
    assert_eq!(run(&mut con, &["PING"]), "PONG");
}

fn wait_done(con: &mut redis::Connection, id: &str) {
    eventually(Duration::from_secs(10), &format!("{id} to finish"), || {
        run(con, &["RG.DUMPEXECUTIONS"]).contains(&format!("{id},status,done"))
    });
}

#[test]
fn unblocking_runs_and_their_lifecycle() {
    let server = Server::start(MODULE, &[]);
    let mut con = server.conn();
    load_sample(&mut con);
    let id = run(
        &mut con,
        &["RG.RUN", "first_keys", "UNBLOCKING", "ARGS", "user:*", "2"],
    );
    assert_eq!(id, format!("{}-1", "0".repeat(40)));
    assert_replies(
        &mut con,
        &[
            (&["RG.GETRESULTSBLOCKING", &id], "[[user:ann,user:bob],[]]"),
            (&["RG.GETRESULTS", &id], "[[user:ann,user:bob],[]]"),
        ],
    );
    assert!(run(&mut con, &["RG.DUMPEXECUTIONS"])
        .contains(&format!("[executionId,{id},status,done,registered,0]")));
    let plan = run(&mut con, &["RG.GETEXECUTION", &id]);
    assert!(
        plan.starts_with(&format!(
            "[[shard_id,{},execution_plan,[status,done,",
            "0".repeat(40)
        )),
        "{plan}"
    );
    assert!(plan.contains("results,2"), "{plan}");
    assert!(plan.contains("[type,reader,"), "{plan}");
    assert_eq!(plan, run(&mut con, &["RG.GETEXECUTION", &id, "SHARD"]));
    assert_replies(
        &mut con,
        &[
            (&["RG.DROPEXECUTION", &id], "OK"),
            (
                &["RG.GETRESULTS", &id],
                "ERR(execution plan does not exist)",
            ),
        ],
    );

    // A blocking run is dropped once replied: it is not listed.
    run(&mut con, &["RG.RUN", "word_count"]);
    assert!(!run(&mut con, &["RG.DUMPEXECUTIONS"]).contains("-2,"));
}

#[test]
fn abort_a_long_run() {
    let server = Server::start(MODULE, &[]);
    let mut con = server.conn();
    let id = run(
        &mut con,
        &["RG.RUN", "slow_count", "UNBLOCKING", "ARGS", "100000"],
    );
    std::thread::sleep(Duration::from_millis(100));
    assert_replies(
        &mut con,
        &[
            (&["RG.GETRESULTS", &id], "ERR(execution is still running)"),
            (
                &["RG.DROPEXECUTION", &id],
                "ERR(can not drop a not yet finished execution, abort it first.)",
            ),
        ],
    );
    // A client that cannot block gets an error instead of blocking.
    run(&mut con, &["MULTI"]);
    run(&mut con, &["RG.GETRESULTSBLOCKING", &id]);
    assert!(run(&mut con, &["EXEC"]).contains("this client cannot block"));
    let started = Instant::now();
    assert_eq!(run(&mut con, &["RG.ABORTEXECUTION", &id]), "OK");
    eventually(Duration::from_secs(5), "the abort to stop the run", || {
        run(&mut con, &["RG.DUMPEXECUTIONS"]).contains(&format!("{id},status,aborted"))
    });
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_replies(
        &mut con,
        &[
            (&["RG.GETRESULTS", &id], "ERR(execution was aborted)"),
            (&["RG.DROPEXECUTION", &id], "OK"),
        ],
    );
}

#[test]
fn max_executions_and_config() {
    let server = Server::start(
        MODULE,
        &[
            "MaxExecutions",
            "2",
            "ExecutionThreads",
            "2",
            "MyKey",
            "hello",
        ],
    );
    let mut con = server.conn();
    assert_eq!(
        run(
            &mut con,
            &[
                "RG.CONFIGGET",
                "MaxExecutions",
                "ExecutionThreads",
                "MyKey",
                "Nope"
            ]
        ),
        "[2,2,hello,Unsupported config parameter: Nope]"
    );
    let ids: Vec<String> = (0..3)
        .map(|_| {
            let id = run(&mut con, &["RG.RUN", "word_count", "UNBLOCKING"]);
            wait_done(&mut con, &id);
            id
        })
        .collect();
    let list = run(&mut con, &["RG.DUMPEXECUTIONS"]);
    assert!(
        !list.contains(&format!("{},", ids[0])),
        "the oldest finished run was evicted: {list}"
    );
    assert!(list.contains(&ids[1]) && list.contains(&ids[2]), "{list}");
    assert_replies(
        &mut con,
        &[
            (&["RG.CONFIGSET", "MaxExecutions", "10", "ExecutionThreads", "4", "Other", "x"], "[OK,ERR ExecutionThreads is not configurable at runtime,OK - value was saved in extra config dictionary]"),
            (&["RG.CONFIGGET", "maxexecutions", "Other"], "[10,x]"),
            (&["RG.CONFIGSET", "MaxExecutions", "-1"], "[ERR MaxExecutions must be a positive integer, got '-1']"),
        ],
    );
}

#[test]
fn functions_cluster_stubs_and_info() {
    let server = Server::start(MODULE, &[]);
    let mut con = server.conn();
    let functions = run(&mut con, &["RG.DUMPFUNCTIONS"]);
    assert!(
        functions.contains("[name,word_count,kind,flow,doc,Word count: string keys `doc:*`"),
        "{functions}"
    );
    assert_eq!(functions.matches("[name,").count(), 22, "{functions}");
    assert_eq!(
        run(
            &mut con,
            &["RG.CONFIGGET", "ExecutionThreads", "MaxExecutions"]
        ),
        "[3,1000]",
        "1.x defaults"
    );
    assert_replies(
        &mut con,
        &[
            (&["RG.INFOCLUSTER"], "no cluster mode"),
            (&["RG.REFRESHCLUSTER"], "OK"),
        ],
    );
    run(&mut con, &["RG.RUN", "word_count"]);
    let info = run(&mut con, &["INFO", "wordcount"]);
    assert!(info.contains("wordcount_executions_total:1"), "{info}");
    assert!(info.contains("wordcount_functions:22"), "{info}");
}

/// The log of a server that must refuse to load the module with `options`.
fn refused(options: &[&str]) -> String {
    Server::builder()
        .module(MODULE)
        .module_args(options)
        .try_start()
        .err()
        .expect("must not start")
}

#[test]
fn bad_load_options_refuse_to_load() {
    let err = refused(&["MaxExecutions", "zero"]);
    assert!(
        err.contains("bad module option: MaxExecutions must be a positive integer"),
        "{err}"
    );
    let err = refused(&["ExecutionThreads"]);
    assert!(err.contains("'ExecutionThreads' has no value"), "{err}");
}
