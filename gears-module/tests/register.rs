//! `#[gears::register]` end to end: registered by name, listed with kind and doc, built with
//! ARGS, and run.

use gears::prelude::*;
use gears::registry::{self, Built, FunctionKind};
use gears::testing::{MemoryCluster, MemoryHost};

/// Counts words in string keys matching `doc:*`.
///
/// More text that is not the summary.
#[gears::register]
fn word_count() -> GearsBuilder<(String, u64)> {
    gears::testing::word_count()
}

/// Keys matching the pattern given as the first argument.
#[gears::register]
fn keys_like(args: &[String]) -> Result<GearsBuilder<RedisBytes>, String> {
    let pattern = args.first().ok_or("usage: keys_like <pattern>")?;
    Ok(GearsBuilder::new(KeysOnlyReader::new(pattern.clone())))
}

/// Key names in upper case: the flow ends with a fused `map`, so it is returned as `impl Flow`.
#[gears::register]
fn shout() -> impl Flow<RedisBytes> {
    GearsBuilder::new(KeysOnlyReader::new("*")).map(|k| RedisBytes::from(k.to_ascii_uppercase()))
}

fn run(name: &str, args: &[&str], host: &MemoryHost) -> Result<Vec<Value>, GearsError> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let Built::Flow(plan) = registry::build(name, &args)? else {
        panic!("{name} is not a flow");
    };
    let out = plan.run_with(std::sync::Arc::new(host.clone()), None, &Default::default())?;
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    Ok(out.results)
}

#[test]
fn registered_functions_are_listed_with_kind_and_doc() {
    let names: Vec<_> = registry::functions().iter().map(|f| f.name).collect();
    assert_eq!(names, ["keys_like", "shout", "word_count"]);
    let wc = registry::find("word_count").unwrap();
    assert_eq!(wc.kind, FunctionKind::Flow);
    assert_eq!(wc.doc, "Counts words in string keys matching `doc:*`.");
}

#[test]
fn run_by_name_with_and_without_args() {
    let host = MemoryHost::new();
    host.set("doc:1", "to be or not to be");
    host.set("other", "x");
    let words = run("word_count", &[], &host).unwrap();
    assert_eq!(words[0], ("be".to_string(), 2u64).into_value());
    assert_eq!(words.len(), 4);
    assert_eq!(
        run("keys_like", &["oth*"], &host).unwrap(),
        [Value::bulk("other")]
    );
}

#[test]
fn bad_calls_are_clear_errors() {
    let host = MemoryHost::new();
    let err = run("nope", &[], &host).unwrap_err();
    assert_eq!(err.to_string(), "unknown function 'nope'");
    let err = run("word_count", &["extra"], &host).unwrap_err();
    assert_eq!(err.to_string(), "function 'word_count' takes no ARGS");
    let err = run("keys_like", &[], &host).unwrap_err();
    assert_eq!(err.to_string(), "usage: keys_like <pattern>");
}

#[test]
fn the_same_registered_flow_runs_on_a_cluster() {
    let cluster = MemoryCluster::new(3);
    for (i, text) in ["a b", "b c", "c c"].iter().enumerate() {
        cluster.set(format!("doc:{i}"), text);
    }
    let out = cluster.run(word_count());
    assert_eq!(
        out.results,
        [
            ("a".to_string(), 1),
            ("b".to_string(), 2),
            ("c".to_string(), 3)
        ]
    );
}
