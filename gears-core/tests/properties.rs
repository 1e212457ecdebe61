//! Property tests of the dataflow engine: every grouping / aggregating operator gives the same
//! answer on one standalone host, on a 1-shard and on a 3-shard in-memory cluster, and that
//! answer equals a plain Rust reference computation. Also: `repartition` routes each record to
//! the shard owning its key, and the cross-shard codec roundtrips and never panics on garbage.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use gears_core::codec::{decode_batch, encode_batch, BatchEncoder, BATCH_VERSION};
use gears_core::prelude::*;
use gears_core::readers::KeyRecord;
use gears_core::testing::{MemoryCluster, MemoryHost};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// One input record: a grouping key (from a tiny alphabet, so keys repeat) and a value.
type Rec = (String, u32);

/// The grouping keys: 20 short strings (`a`..`d`, `aa`..`dd`), so keys repeat a lot.
fn key_alphabet() -> Vec<String> {
    let letters = ["a", "b", "c", "d"];
    let pairs = letters
        .iter()
        .flat_map(|x| letters.iter().map(move |y| format!("{x}{y}")));
    letters.iter().map(|x| x.to_string()).chain(pairs).collect()
}

fn data_strategy() -> impl Strategy<Value = Vec<Rec>> {
    prop::collection::vec((prop::sample::select(key_alphabet()), any::<u32>()), 0..300)
}

/// The same data loaded in three environments.
struct Envs {
    host: MemoryHost,
    one: MemoryCluster,
    three: MemoryCluster,
    as_hash: bool,
}

impl Envs {
    /// Loads record `i` as key `rec:{i}`: a hash `{k, v}` or a string `"k|v"`.
    fn load(data: &[Rec], as_hash: bool) -> Self {
        let envs = Envs {
            host: MemoryHost::new(),
            one: MemoryCluster::new(1),
            three: MemoryCluster::new(3),
            as_hash,
        };
        for (i, (k, v)) in data.iter().enumerate() {
            let key = format!("rec:{i}");
            let v = v.to_string();
            if as_hash {
                let fields = [("k", k.as_str()), ("v", v.as_str())];
                envs.host.hset(&key, &fields);
                envs.one.hset(&key, &fields);
                envs.three.hset(&key, &fields);
            } else {
                let value = format!("{k}|{v}");
                envs.host.set(&key, &value);
                envs.one.set(&key, &value);
                envs.three.set(&key, &value);
            }
        }
        // The data really is spread: every key lives on exactly one shard of the 3-cluster.
        let total: usize = envs.three.shards().iter().map(MemoryHost::dbsize).sum();
        assert_eq!(total, data.len());
        assert_eq!(envs.host.dbsize(), data.len());
        envs
    }

    /// The flow's source: every loaded record, parsed back to `(key, value)`.
    fn records(&self) -> GearsBuilder<Rec> {
        let as_hash = self.as_hash;
        GearsBuilder::new(KeysReader::new("rec:*"))
            .try_map(move |r| parse(&r, as_hash))
            .seal()
    }

    /// Runs `flow` on the standalone host, the 1-shard and the 3-shard cluster; asserts no step
    /// failed anywhere and returns the three result lists.
    fn run<T: Record + Debug>(
        &self,
        flow: impl Fn(GearsBuilder<Rec>) -> GearsBuilder<T>,
    ) -> Result<[Vec<T>; 3], TestCaseError> {
        let single = flow(self.records()).run(&self.host);
        let one = self.one.run(flow(self.records()));
        let three = self.three.run(flow(self.records()));
        prop_assert!(single.errors.is_empty(), "host: {:?}", single.errors);
        prop_assert!(one.errors.is_empty(), "1 shard: {:?}", one.errors);
        prop_assert!(three.errors.is_empty(), "3 shards: {:?}", three.errors);
        Ok([single.results, one.results, three.results])
    }
}

fn parse(r: &KeyRecord, as_hash: bool) -> Result<Rec, String> {
    let (k, v) = if as_hash {
        (
            r.field("k").ok_or("no k")?.to_string(),
            r.field("v").ok_or("no v")?,
        )
    } else {
        let (k, v) = r
            .string()
            .ok_or("not a string")?
            .split_once('|')
            .ok_or("no |")?;
        (k.to_string(), v)
    };
    Ok((k, v.parse::<u32>().map_err(|e| e.to_string())?))
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// Asserts that all three environments give `expected` (after `normalize`).
fn all_equal<T: Debug + PartialEq>(
    [single, one, three]: [Vec<T>; 3],
    expected: &[T],
    normalize: impl Fn(Vec<T>) -> Vec<T>,
) -> Result<(), TestCaseError> {
    let (single, one, three) = (normalize(single), normalize(one), normalize(three));
    prop_assert_eq!(&three, &one, "3 shards vs 1 shard");
    prop_assert_eq!(&one, &single, "1 shard vs standalone");
    prop_assert_eq!(&three[..], expected, "3 shards vs reference");
    Ok(())
}

fn ref_sums(data: &[Rec]) -> Vec<(String, u64)> {
    let mut m = BTreeMap::new();
    for (k, v) in data {
        *m.entry(k.clone()).or_insert(0u64) += u64::from(*v);
    }
    m.into_iter().collect()
}

fn ref_counts(data: &[Rec]) -> Vec<(String, u64)> {
    let mut m = BTreeMap::new();
    for (k, _) in data {
        *m.entry(k.clone()).or_insert(0u64) += 1;
    }
    m.into_iter().collect()
}

/// Per key: (count, sum, min, max).
type Stats = (u64, u64, u32, u32);
const STATS_ZERO: Stats = (0, 0, u32::MAX, 0);

fn add_stat(s: &mut Stats, v: u32) {
    s.0 += 1;
    s.1 += u64::from(v);
    s.2 = s.2.min(v);
    s.3 = s.3.max(v);
}

fn merge_stats(s: &mut Stats, o: Stats) {
    s.0 += o.0;
    s.1 += o.1;
    s.2 = s.2.min(o.2);
    s.3 = s.3.max(o.3);
}

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(64)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn group_by_matches_reference(data in data_strategy(), as_hash in any::<bool>()) {
        let envs = Envs::load(&data, as_hash);
        // Sum per key.
        let sums = envs.run(|f| f.group_by(|r| r.0.clone(), 0u64, |_, a, r| *a += u64::from(r.1)))?;
        all_equal(sums, &ref_sums(&data), sorted)?;
        // The whole group, as a multiset of values.
        let groups = envs.run(|f| {
            f.group_by(|r| r.0.clone(), Vec::new(), |k, a: &mut Vec<u32>, r| {
                assert_eq!(*k, r.0, "a record reached the wrong group");
                a.push(r.1)
            })
        })?;
        let mut expected: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for (k, v) in &data {
            expected.entry(k.clone()).or_default().push(*v);
        }
        let expected: Vec<(String, Vec<u32>)> =
            expected.into_iter().map(|(k, v)| (k, sorted(v))).collect();
        all_equal(groups, &expected, |v| {
            sorted(v.into_iter().map(|(k, g)| (k, sorted(g))).collect())
        })?;
    }

    #[test]
    fn count_by_matches_reference(data in data_strategy(), as_hash in any::<bool>()) {
        let envs = Envs::load(&data, as_hash);
        let out = envs.run(|f| f.count_by(|r| r.0.clone()))?;
        all_equal(out, &ref_counts(&data), sorted)?;
        // Keyed by the value's parity (a non-string partition key).
        let out = envs.run(|f| f.count_by(|r| r.1 % 2 == 0))?;
        let mut expected = BTreeMap::new();
        for (_, v) in &data {
            *expected.entry(v % 2 == 0).or_insert(0u64) += 1;
        }
        all_equal(out, &expected.into_iter().collect::<Vec<_>>(), sorted)?;
    }

    #[test]
    fn aggregate_matches_reference(data in data_strategy(), as_hash in any::<bool>()) {
        let envs = Envs::load(&data, as_hash);
        let out = envs.run(|f| f.aggregate(STATS_ZERO, |s, r| add_stat(s, r.1), merge_stats))?;
        let mut expected = STATS_ZERO;
        for (_, v) in &data {
            add_stat(&mut expected, *v);
        }
        // Exactly one value, `zero` itself on empty input.
        all_equal(out, &[expected], |v| v)?;
    }

    #[test]
    fn aggregate_by_matches_reference(data in data_strategy(), as_hash in any::<bool>()) {
        let envs = Envs::load(&data, as_hash);
        let out = envs.run(|f| {
            f.aggregate_by(|r| r.0.clone(), STATS_ZERO, |s, r| add_stat(s, r.1), merge_stats)
        })?;
        let mut expected: BTreeMap<String, Stats> = BTreeMap::new();
        for (k, v) in &data {
            add_stat(expected.entry(k.clone()).or_insert(STATS_ZERO), *v);
        }
        all_equal(out, &expected.into_iter().collect::<Vec<_>>(), sorted)?;
    }

    #[test]
    fn distinct_matches_reference(data in data_strategy(), as_hash in any::<bool>()) {
        let envs = Envs::load(&data, as_hash);
        let keys = envs.run(|f| f.map(|r| r.0).distinct())?;
        let expected: BTreeSet<String> = data.iter().map(|r| r.0.clone()).collect();
        all_equal(keys, &expected.into_iter().collect::<Vec<_>>(), sorted)?;
        // Whole records; value collisions are rare, so also fold the value into a small range.
        let pairs = envs.run(|f| f.map(|(k, v)| (k, v % 4)).distinct())?;
        let expected: BTreeSet<(String, u32)> =
            data.iter().map(|(k, v)| (k.clone(), v % 4)).collect();
        all_equal(pairs, &expected.into_iter().collect::<Vec<_>>(), sorted)?;
    }

    #[test]
    fn sort_matches_reference(data in data_strategy(), as_hash in any::<bool>()) {
        let envs = Envs::load(&data, as_hash);
        // Ascending, exactly (no normalization of the output).
        let asc = envs.run(|f| f.sort())?;
        let expected = sorted(data.clone());
        all_equal(asc, &expected, |v| v)?;
        let values = envs.run(|f| f.map(|r| r.1).sort())?;
        let expected_values = sorted(data.iter().map(|r| r.1).collect::<Vec<_>>());
        all_equal(values, &expected_values, |v| v)?;
        // Descending.
        let desc = envs.run(|f| f.sort_desc())?;
        let mut expected_desc = expected.clone();
        expected_desc.reverse();
        all_equal(desc, &expected_desc, |v| v)?;
        // A custom comparator: by value, descending.
        let by = envs.run(|f| f.map(|r| r.1).sort_by(|a, b| b.cmp(a)))?;
        let mut expected_by = expected_values.clone();
        expected_by.reverse();
        all_equal(by, &expected_by, |v| v)?;
    }

    #[test]
    fn avg_matches_reference(data in data_strategy(), as_hash in any::<bool>()) {
        let envs = Envs::load(&data, as_hash);
        let [single, one, three] = envs.run(|f| f.avg(|r| f64::from(r.1)))?;
        if data.is_empty() {
            // Documented: no record for empty input.
            prop_assert!(single.is_empty() && one.is_empty() && three.is_empty());
        } else {
            let expected =
                data.iter().map(|r| f64::from(r.1)).sum::<f64>() / data.len() as f64;
            for (name, got) in [("host", &single), ("1 shard", &one), ("3 shards", &three)] {
                prop_assert_eq!(got.len(), 1, "{}", name);
                let tolerance = 1e-9 * expected.abs().max(1.0);
                prop_assert!(
                    (got[0] - expected).abs() <= tolerance,
                    "{}: {} vs {}", name, got[0], expected
                );
            }
        }
    }

    #[test]
    fn count_matches_reference(data in data_strategy(), as_hash in any::<bool>()) {
        let envs = Envs::load(&data, as_hash);
        let out = envs.run(|f| f.count())?;
        // Exactly one value, also on empty input ([0]).
        all_equal(out, &[data.len() as u64], |v| v)?;
        // After a filter that may drop everything.
        let out = envs.run(|f| f.filter(|r| r.0 == "a").count())?;
        let expected = data.iter().filter(|r| r.0 == "a").count() as u64;
        all_equal(out, &[expected], |v| v)?;
    }

    #[test]
    fn repartition_places_records_on_their_owner(
        keys in prop::collection::vec("[a-z0-9{}:]{0,10}", 0..200),
        shards in 1usize..5,
    ) {
        // The records start where `src:{i}` lives, which is unrelated to their own key.
        let cluster = MemoryCluster::new(shards);
        for (i, k) in keys.iter().enumerate() {
            cluster.set(format!("src:{i}"), k);
        }
        let out = cluster.run(
            GearsBuilder::new(KeysReader::new("src:*"))
                .map(|r| r.string().unwrap_or_default().to_string())
                .repartition(|k| k.clone())
                .try_map(|k| gears_core::context::shard_id().map(|me| (k, me))),
        );
        prop_assert!(out.errors.is_empty(), "{:?}", out.errors);
        let topo = cluster.topology();
        for (key, shard) in &out.results {
            let owner = topo.owner_of_key(key.as_bytes());
            prop_assert_eq!(&topo.shards()[owner].id, shard, "key {:?}", key);
            // A write of the key from there is local: no cross-slot error.
            prop_assert!(cluster.shards()[owner].call(&["EXISTS", key.as_str()]).is_ok());
        }
        // Nothing lost, nothing duplicated.
        let got = sorted(out.results.into_iter().map(|(k, _)| k).collect::<Vec<_>>());
        prop_assert_eq!(got, sorted(keys));
    }

    #[test]
    fn repartition_by_integer_key(
        values in prop::collection::vec(any::<u32>(), 0..200),
    ) {
        // Every shard yields every value; each copy must land on the owner of its decimal form.
        let cluster = MemoryCluster::new(3);
        let data = values.clone();
        let out = cluster.run(
            GearsBuilder::new(IterReader::new(move |_| data.clone()))
                .repartition(|n| *n)
                .try_map(|n| gears_core::context::shard_id().map(|me| (n, me))),
        );
        prop_assert!(out.errors.is_empty(), "{:?}", out.errors);
        prop_assert_eq!(out.results.len(), 3 * values.len());
        let topo = cluster.topology();
        for (n, shard) in &out.results {
            let owner = topo.owner_of_key(n.to_string().as_bytes());
            prop_assert_eq!(&topo.shards()[owner].id, shard, "value {}", n);
        }
    }

    #[test]
    fn codec_roundtrips(
        records in prop::collection::vec(
            (any::<String>(), any::<u64>(), prop::collection::vec(any::<u8>(), 0..64)),
            0..100,
        ),
        max_bytes in 1usize..512,
    ) {
        let bytes = encode_batch(&records).unwrap();
        let back = decode_batch::<(String, u64, Vec<u8>)>(&bytes).unwrap();
        prop_assert_eq!(&back, &records);
        // Split into several batches by a small encoder: each batch decodes on its own, and
        // together they are the input, in order.
        let mut enc = BatchEncoder::new(max_bytes);
        let mut batches = Vec::new();
        for r in &records {
            batches.extend(enc.push(r).unwrap());
        }
        batches.extend(enc.finish());
        prop_assert_eq!(batches.is_empty(), records.is_empty());
        let mut all = Vec::new();
        for b in &batches {
            let part = decode_batch::<(String, u64, Vec<u8>)>(b).unwrap();
            prop_assert!(!part.is_empty(), "an empty batch was emitted");
            all.extend(part);
        }
        prop_assert_eq!(all, records);
        // Every strict prefix of a batch is rejected.
        let cut = max_bytes % bytes.len();
        prop_assert!(decode_batch::<(String, u64, Vec<u8>)>(&bytes[..cut]).is_err());
    }

    #[test]
    fn decoding_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        // Anything: Ok or Err, never a panic.
        let _ = decode_batch::<(String, u64, Vec<u8>)>(&bytes);
        let _ = decode_batch::<String>(&bytes);
        let _ = decode_batch::<Vec<u64>>(&bytes);
        let _ = decode_batch::<KeyRecord>(&bytes);
        // Garbage behind a well-formed header, so the record decoder itself is exercised.
        let mut framed = vec![b'G', b'B', BATCH_VERSION];
        let count = bytes.first().map_or(0, |&b| u32::from(b));
        framed.extend_from_slice(&count.to_le_bytes());
        framed.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        framed.extend_from_slice(&bytes);
        let _ = decode_batch::<(String, u64, Vec<u8>)>(&framed);
        let _ = decode_batch::<Vec<u64>>(&framed);
        let _ = decode_batch::<KeyRecord>(&framed);
        // A claimed count far beyond the payload is an error, not a huge allocation.
        framed[3..7].copy_from_slice(&u32::MAX.to_le_bytes());
        prop_assert!(decode_batch::<(String, u64, Vec<u8>)>(&framed).is_err());
    }

    #[test]
    fn corrupted_batches_never_panic(
        records in prop::collection::vec((any::<String>(), any::<u64>()), 1..20),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = encode_batch(&records).unwrap();
        let mut bad = bytes.clone();
        let len = bad.len();
        for (at, x) in &flips {
            bad[at.index(len)] ^= x;
        }
        match decode_batch::<(String, u64)>(&bad) {
            Ok(decoded) => prop_assert!(decoded.len() <= bad.len()),
            Err(e) => prop_assert!(e.to_string().starts_with("codec error"), "{}", e),
        }
        let cut = cut.index(bytes.len());
        prop_assert!(decode_batch::<(String, u64)>(&bytes[..cut]).is_err());
    }
}

fn none<T>(r: Result<[Vec<T>; 3], TestCaseError>) -> bool {
    r.unwrap().iter().all(Vec::is_empty)
}

/// The empty input, explicitly (the generator reaches it only now and then).
#[test]
fn empty_input_on_every_environment() {
    for as_hash in [false, true] {
        let envs = Envs::load(&[], as_hash);
        assert_eq!(envs.run(|f| f.count()).unwrap(), [[0u64], [0], [0]]);
        assert_eq!(
            envs.run(|f| f.aggregate(STATS_ZERO, |s, r| add_stat(s, r.1), merge_stats))
                .unwrap(),
            [[STATS_ZERO], [STATS_ZERO], [STATS_ZERO]]
        );
        assert!(none(envs.run(|f| f.avg(|r| f64::from(r.1)))));
        assert!(none(envs.run(|f| f.count_by(|r| r.0.clone()))));
        assert!(none(envs.run(|f| {
            f.group_by(|r| r.0.clone(), 0u64, |_, a, r| *a += u64::from(r.1))
        })));
        assert!(none(envs.run(|f| {
            f.aggregate_by(
                |r| r.0.clone(),
                STATS_ZERO,
                |s, r| add_stat(s, r.1),
                merge_stats,
            )
        })));
        assert!(none(envs.run(|f| f.distinct())));
        assert!(none(envs.run(|f| f.sort())));
        assert!(none(envs.run(|f| f.sort_desc())));
    }
}
