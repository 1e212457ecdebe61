//! The README's main job (until the module runs inside redis-server): loads sample data into
//! an in-memory 3-shard cluster and a single server, runs every registered example flow by
//! name on both, and prints the results side by side.

use std::process::ExitCode;
use std::sync::Arc;

use gears::registry::{self, Registered};
use gears::testing::{MemoryCluster, MemoryHost};
use gears::value::Value;

fn show(v: &Value) -> String {
    match v {
        Value::Nil => "nil".into(),
        Value::Int(i) => i.to_string(),
        Value::Double(d) => format!("{d:.2}"),
        Value::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Status(s) => s.clone(),
        Value::Error(e) => format!("(error) {e}"),
        Value::Array(a) => format!("[{}]", a.iter().map(show).collect::<Vec<_>>().join(", ")),
    }
}

fn main() -> ExitCode {
    let host = MemoryHost::new();
    let cluster = MemoryCluster::new(3);
    gears_examples::sample_data(|k, v| host.set(k, v), |k, f| host.hset(k, f));
    gears_examples::sample_data(|k, v| cluster.set(k, v), |k, f| cluster.hset(k, f));
    println!(
        "Gears demo: {} registered functions",
        registry::functions().len()
    );
    let mut failures = 0;
    for f in registry::functions() {
        let args: Vec<String> = if f.name == "first_keys" {
            vec!["user:*".into(), "3".into()]
        } else {
            vec![]
        };
        println!("\n== {} ({}) — {}", f.name, f.kind.name(), f.doc);
        let Ok(Registered::Flow(plan)) = registry::build(f.name, &args) else {
            println!("   could not build");
            failures += 1;
            continue;
        };
        let single = plan.run_with(Arc::new(host.clone()), None, &Default::default());
        let shards = cluster
            .shards()
            .iter()
            .map(|s| s.dbsize().to_string())
            .collect::<Vec<_>>()
            .join("/");
        match single {
            Ok(out) => {
                for v in &out.results {
                    println!("   {}", show(v));
                }
                for e in &out.errors {
                    println!("   error: {e}");
                }
            }
            Err(e) => {
                println!("   failed: {e}");
                failures += 1;
            }
        }
        // The same flow, unchanged, across 3 shards must give the same answer.
        let single = plan.run_with(Arc::new(host.clone()), None, &Default::default());
        let multi = cluster.run_erased(&*plan, &Default::default());
        let same = matches!((&single, &multi), (Ok(a), Ok(b)) if a.results == b.results);
        println!(
            "   3-shard cluster (keys per shard {shards}): {}",
            if same {
                "same result"
            } else {
                "DIFFERENT RESULT"
            }
        );
        if !same {
            failures += 1;
        }
    }
    if failures > 0 {
        eprintln!("\n{failures} example(s) failed");
        return ExitCode::FAILURE;
    }
    println!("\nAll examples ran.");
    ExitCode::SUCCESS
}
