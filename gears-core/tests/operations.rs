//! Every operation on the same edge cases, on one server and on a simulated 3-shard cluster
//! holding the same keys: empty input, one record, duplicate keys, a panicking closure
//! (blamed on the right step, only its record dropped), an `Err` where the closure is
//! fallible. Plus the plan's stage split, cross-shard batching and local combining.

use std::fmt::Debug;

use gears_core::chain::Chain;
use gears_core::prelude::*;
use gears_core::testing::{MemoryCluster, MemoryHost};

/// The keys `k0..` holding `values`, on one host and on a 3-shard cluster.
fn load(values: &[u32]) -> (MemoryHost, MemoryCluster) {
    let host = MemoryHost::new();
    let cluster = MemoryCluster::new(3);
    for (i, v) in values.iter().enumerate() {
        host.set(format!("k{i}"), v.to_string());
        cluster.set(format!("k{i}"), v.to_string());
    }
    (host, cluster)
}

/// The numbers stored under `k*`.
fn numbers() -> GearsBuilder<u32> {
    GearsBuilder::new(KeysReader::new("k*"))
        .map(|r| r.string().unwrap().parse::<u32>().unwrap())
        .seal()
}

/// Runs `flow` on both environments; asserts they agree (results sorted, same error steps)
/// and returns the sorted results and the error steps.
fn both<T, C, F>(values: &[u32], flow: F) -> (Vec<T>, Vec<String>)
where
    T: Record + Ord + Clone + Debug,
    C: Chain<Out = T>,
    F: Fn(GearsBuilder<u32>) -> GearsBuilder<T, C>,
{
    let (host, cluster) = load(values);
    let single = flow(numbers()).run(&host);
    let multi = cluster.run(flow(numbers()));
    let mut a = single.results.clone();
    let mut b = multi.results.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b, "one server and 3 shards disagree");
    let steps = |e: &[StepError]| {
        let mut s: Vec<String> = e.iter().map(|e| e.step.clone()).collect();
        s.sort();
        s
    };
    assert_eq!(
        steps(&single.errors),
        steps(&multi.errors),
        "error steps disagree"
    );
    (a, steps(&single.errors))
}

fn no_errors() -> Vec<String> {
    Vec::new()
}

fn blamed(step: &str) -> Vec<String> {
    vec![step.to_string()]
}

#[test]
fn per_record_steps() {
    assert_eq!(both(&[], |f| f.map(|x| x + 1)), (vec![], no_errors()));
    assert_eq!(both(&[5], |f| f.map(|x| x + 1)), (vec![6], no_errors()));
    assert_eq!(
        both(&[1, 2, 3], |f| f.map(|x| if x == 2 {
            panic!("two")
        } else {
            x * 2
        })),
        (vec![2, 6], blamed("map"))
    );
    assert_eq!(
        both(&[1, 2, 3], |f| f.try_map(|x| if x == 2 {
            Err("two")
        } else {
            Ok(x)
        })),
        (vec![1, 3], blamed("map"))
    );
    assert_eq!(
        both(&[5], |f| f.flat_map(|x| [x, x])),
        (vec![5, 5], no_errors())
    );
    assert_eq!(
        both(&[1, 2], |f| f.flat_map(|x| {
            assert!(x != 2);
            [x]
        })),
        (vec![1], blamed("flat_map"))
    );
    assert_eq!(
        both(&[1, 2], |f| f.try_flat_map(|x| if x == 2 {
            Err("no")
        } else {
            Ok([x])
        })),
        (vec![1], blamed("flat_map"))
    );
    assert_eq!(
        both(&[5], |f| f.filter(|x| *x == 5)),
        (vec![5], no_errors())
    );
    assert_eq!(
        both(&[1, 2, 3], |f| f.filter(|x| if *x == 2 {
            panic!()
        } else {
            true
        })),
        (vec![1, 3], blamed("filter"))
    );
    assert_eq!(
        both(&[1, 2, 3], |f| f.try_filter(|x| if *x == 2 {
            Err("no")
        } else {
            Ok(true)
        })),
        (vec![1, 3], blamed("filter"))
    );
    assert_eq!(both(&[5], |f| f.for_each(|_| {})), (vec![5], no_errors()));
    assert_eq!(
        both(&[1, 2], |f| f.for_each(|x| assert!(*x != 2))),
        (vec![1], blamed("for_each"))
    );
    assert_eq!(
        both(&[1, 2], |f| f.try_for_each(|x| if *x == 2 {
            Err("no")
        } else {
            Ok(())
        })),
        (vec![1], blamed("for_each"))
    );
    // Parallel forms: panics are entries too, order kept (checked on one server).
    let (host, _) = load(&[1, 2, 3]);
    let out = numbers()
        .par_filter(|x| if *x == 2 { panic!() } else { true })
        .run(&host);
    assert_eq!(out.errors.len(), 1);
    assert_eq!(out.errors[0].step, "filter");
    let out = numbers()
        .par_flat_map(|x| if x == 2 { panic!() } else { vec![x] })
        .run(&host);
    assert_eq!(out.errors[0].step, "flat_map");
    // A panic upstream of a fold is blamed on the fused step, not the fold.
    assert_eq!(
        both(&[1, 2, 3], |f| f
            .map(|x| if x == 3 { panic!() } else { x })
            .count()),
        (vec![2], blamed("map"))
    );
}

#[test]
fn local_steps() {
    // accumulate and local_group_by are per shard: compare one record, and check on one server.
    assert_eq!(
        both(&[], |f| f.accumulate(0u32, |a, x| *a += x)),
        (vec![], no_errors())
    );
    assert_eq!(
        both(&[5], |f| f.accumulate(0u32, |a, x| *a += x)),
        (vec![5], no_errors())
    );
    let (host, _) = load(&[1, 2, 3]);
    let out = numbers()
        .accumulate(0u32, |a, x| if x == 2 { panic!() } else { *a += x })
        .run(&host);
    assert_eq!(
        (out.results, out.errors[0].step.as_str()),
        (vec![4], "accumulate")
    );

    assert_eq!(
        both(&[5], |f| f.local_group_by(
            |x| x % 2,
            0u32,
            |_, a, _| *a += 1
        )),
        (vec![(1, 1)], no_errors())
    );
    let out = numbers()
        .local_group_by(
            |x| x % 2,
            0u32,
            |_, a, x| if x == 3 { panic!() } else { *a += 1 },
        )
        .run(&host);
    let mut r = out.results;
    r.sort();
    assert_eq!(
        (r, out.errors[0].step.as_str()),
        (vec![(0, 1), (1, 1)], "local_group_by")
    );

    assert_eq!(both(&[], |f| f.limit(3, 0)), (vec![], no_errors()));
    assert_eq!(
        both(&[5], |f| f.limit(3, 0)),
        (vec![5], no_errors()),
        "limit beyond length"
    );
}

#[test]
fn exchanges() {
    assert_eq!(both(&[], |f| f.collect()), (vec![], no_errors()));
    assert_eq!(both(&[5], |f| f.collect()), (vec![5], no_errors()));
    assert_eq!(
        both(&[3, 1, 2, 1], |f| f.collect()),
        (vec![1, 1, 2, 3], no_errors())
    );
    assert_eq!(both(&[], |f| f.repartition(|x| *x)), (vec![], no_errors()));
    assert_eq!(
        both(&[5], |f| f.repartition(|x| *x)),
        (vec![5], no_errors())
    );
    // On one server repartition passes records through without calling key_op.
    let (_, cluster) = load(&[1, 2, 3]);
    let out = cluster.run(numbers().repartition(|x| if *x == 2 { panic!() } else { *x }));
    let mut r = out.results;
    r.sort();
    assert_eq!(
        (r, out.errors[0].step.as_str()),
        (vec![1, 3], "repartition")
    );
}

#[test]
fn grouping() {
    let count = |f: GearsBuilder<u32>| f.group_by(|x| x % 2, 0u32, |_, n, _| *n += 1);
    assert_eq!(both(&[], count), (vec![], no_errors()));
    assert_eq!(both(&[5], count), (vec![(1, 1)], no_errors()));
    assert_eq!(
        both(&[1, 3, 5, 2], count),
        (vec![(0, 1), (1, 3)], no_errors()),
        "duplicate keys"
    );
    assert_eq!(
        both(&[1, 2, 3], |f| f.group_by(
            |x| if *x == 2 { panic!() } else { x % 2 },
            0u32,
            |_, n, _| *n += 1
        )),
        (vec![(1, 2)], blamed("extract_key"))
    );
    assert_eq!(
        both(&[1, 2, 3], |f| f.group_by(
            |x| x % 2,
            0u32,
            |_, n, x| if x == 2 { panic!() } else { *n += 1 }
        )),
        (vec![(0, 0), (1, 2)], blamed("group_by"))
    );

    let lists = |f: GearsBuilder<u32>| {
        f.batch_group_by(
            |x| x % 2,
            |_, mut v| {
                v.sort();
                v
            },
        )
    };
    assert_eq!(both(&[], lists), (vec![], no_errors()));
    assert_eq!(both(&[5], lists), (vec![(1, vec![5])], no_errors()));
    assert_eq!(
        both(&[1, 3, 2], lists),
        (vec![(0, vec![2]), (1, vec![1, 3])], no_errors())
    );
    assert_eq!(
        both(&[1, 2], |f| f.batch_group_by(
            |x| x % 2,
            |k, v| if *k == 0 { panic!() } else { v }
        )),
        (vec![(1, vec![1])], blamed("batch_group_by"))
    );

    let sums =
        |f: GearsBuilder<u32>| f.aggregate_by(|x| x % 2, 0u32, |a, x| *a += x, |a, b| *a += b);
    assert_eq!(both(&[], sums), (vec![], no_errors()));
    assert_eq!(both(&[5], sums), (vec![(1, 5)], no_errors()));
    assert_eq!(both(&[1, 3, 2], sums), (vec![(0, 2), (1, 4)], no_errors()));
    assert_eq!(
        both(&[1, 2, 3], |f| f.aggregate_by(
            |x| x % 2,
            0u32,
            |a, x| if x == 2 { panic!() } else { *a += x },
            |a, b| *a += b
        )),
        (vec![(0, 0), (1, 4)], blamed("aggregate_by"))
    );

    assert_eq!(both(&[], |f| f.count_by(|x| x % 2)), (vec![], no_errors()));
    assert_eq!(
        both(&[5], |f| f.count_by(|x| x % 2)),
        (vec![(1, 1)], no_errors())
    );
    assert_eq!(
        both(&[1, 2, 3], |f| f.count_by(|x| if *x == 2 {
            panic!()
        } else {
            x % 2
        })),
        (vec![(1, 2)], blamed("count_by"))
    );
}

#[test]
fn aggregations() {
    let sum = |f: GearsBuilder<u32>| f.aggregate(0u32, |a, x| *a += x, |a, b| *a += b);
    assert_eq!(both(&[], sum), (vec![0], no_errors()));
    assert_eq!(both(&[5], sum), (vec![5], no_errors()));
    assert_eq!(both(&[1, 2, 3], sum), (vec![6], no_errors()));
    assert_eq!(
        both(&[1, 2, 3], |f| f.aggregate(
            0u32,
            |a, x| if x == 2 { panic!() } else { *a += x },
            |a, b| *a += b
        )),
        (vec![4], blamed("accumulate"))
    );
    // A panicking comb_op drops that partial (one server: one partial).
    let (host, _) = load(&[1, 2]);
    let out = numbers()
        .aggregate(0u32, |a, x| *a += x, |_, _| panic!("comb"))
        .run(&host);
    assert_eq!(
        (out.results, out.errors[0].step.as_str()),
        (vec![0], "aggregate")
    );

    assert_eq!(both(&[], |f| f.count()), (vec![0], no_errors()));
    assert_eq!(both(&[5], |f| f.count()), (vec![1], no_errors()));

    assert_eq!(both(&[], |f| f.distinct()), (vec![], no_errors()));
    assert_eq!(both(&[5], |f| f.distinct()), (vec![5], no_errors()));
    assert_eq!(
        both(&[2, 1, 2, 2, 1], |f| f.distinct()),
        (vec![1, 2], no_errors())
    );

    assert_eq!(both(&[], |f| f.sort()), (vec![], no_errors()));
    assert_eq!(both(&[5], |f| f.sort()), (vec![5], no_errors()));
    let (host, cluster) = load(&[3, 1, 2, 1]);
    assert_eq!(numbers().sort().run(&host).results, [1, 1, 2, 3]);
    assert_eq!(
        cluster.run(numbers().sort()).results,
        [1, 1, 2, 3],
        "global order on 3 shards"
    );
    assert_eq!(cluster.run(numbers().sort_desc()).results, [3, 2, 1, 1]);
    let out = numbers().sort_by(|_, _| panic!("cmp")).run(&host);
    assert!(!out.errors.is_empty() && out.errors.iter().all(|e| e.step == "sort"));
    let mut kept = out.results;
    kept.sort();
    assert_eq!(kept, [1, 1, 2, 3], "nothing lost");
    // sort_by is stable.
    let stable = MemoryHost::new();
    let out = GearsBuilder::new(IterReader::new(|_| [(1, 'b'), (0, 'z'), (1, 'a')]))
        .sort_by(|a, b| a.0.cmp(&b.0))
        .run(&stable);
    assert_eq!(out.results, [(0, 'z'), (1, 'b'), (1, 'a')]);

    let (host, cluster) = load(&[]);
    assert!(numbers().avg(|x| *x as f64).run(&host).results.is_empty());
    assert!(cluster.run(numbers().avg(|x| *x as f64)).results.is_empty());
    let (host, cluster) = load(&[5]);
    assert_eq!(numbers().avg(|x| *x as f64).run(&host).results, [5.0]);
    assert_eq!(cluster.run(numbers().avg(|x| *x as f64)).results, [5.0]);
    let out = cluster.run(numbers().avg(|x| {
        assert!(*x != 5);
        1.0
    }));
    assert_eq!((out.results.len(), out.errors[0].step.as_str()), (0, "avg"));
}

#[test]
fn plans_split_into_stages_at_global_steps() {
    let plan = numbers()
        .map(|x| x + 1)
        .filter(|x| x % 2 == 0)
        .group_by(|x| x % 3, 0u32, |_, n, _| *n += 1)
        .count()
        .build();
    let kinds: Vec<(&str, usize)> = plan.steps().iter().map(|s| (s.kind, s.stage)).collect();
    assert_eq!(
        kinds,
        [
            ("reader", 0),
            ("map", 0),
            ("map", 0),
            ("filter", 0),
            ("extract_key", 0),
            ("repartition", 0),
            ("group_by", 1),
            ("count", 1),
            ("collect", 1),
            ("count", 2),
            ("collect", 2),
        ]
    );
    assert_eq!(plan.stage_count(), 3);
}

#[test]
fn records_cross_shards_in_batches_and_aggregates_combine_locally() {
    let cluster = MemoryCluster::new(3);
    let plan = GearsBuilder::new(IterReader::new(|_| 0..10_000u32))
        .repartition(|x| *x)
        .build();
    let out = cluster.run_plan(&plan, &Default::default()).unwrap();
    assert_eq!(out.results.len(), 30_000);
    let messages = cluster
        .traffic()
        .messages
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        messages <= 30,
        "{messages} messages for ~40 000 records moved: batches, not one per record"
    );

    // count, aggregate and avg ship one partial per shard to the initiator.
    fn exchanged<T>(out: &RunResult<T>) -> u64 {
        out.stats
            .iter()
            .filter(|(s, _)| s.kind == "collect" && s.stage == 0)
            .map(|(_, s)| s.records_out)
            .sum()
    }
    let src = || GearsBuilder::new(IterReader::new(|_| 0..1000u32));
    assert_eq!(exchanged(&cluster.run(src().count())), 3);
    assert_eq!(
        exchanged(&cluster.run(src().aggregate(0u32, |a, x| *a += x, |a, b| *a += b))),
        3
    );
    assert_eq!(exchanged(&cluster.run(src().avg(|x| *x as f64))), 3);
    assert_eq!(
        exchanged(&cluster.run(src().map(|x| x % 10).distinct())),
        30
    );
}
