//! The engine's cost per `sync` event: one keyspace event through a `KeysReader →
//! try_for_each` plan run for its effects (the per-write path of a capture like rgsync's),
//! next to calling the same closure by hand on a record built from the event. The
//! difference is what Gears adds to every write a `sync` registration watches.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use gears_core::host::{Host, KeyType};
use gears_core::plan::RunOptions;
use gears_core::prelude::*;
use gears_core::readers::Event;
use gears_core::testing::MemoryHost;

static SEEN: AtomicU64 = AtomicU64::new(0);

fn effect(r: &KeyRecord) -> Result<(), String> {
    SEEN.fetch_add(r.key.len() as u64, Ordering::Relaxed);
    Ok(())
}

fn event() -> Event {
    Event::Key {
        key: "user:12345".into(),
        event: "hset".to_string(),
        key_type: KeyType::Hash,
        snapshot: None,
    }
}

fn one_sync_event(c: &mut Criterion) {
    let plan = GearsBuilder::new(KeysReader::new("user:*").read_value(false))
        .try_for_each(effect)
        .build();
    let host: Arc<dyn Host> = Arc::new(MemoryHost::new());
    let options = RunOptions::default();

    let before = SEEN.load(Ordering::Relaxed);
    let run = plan
        .run_for_effects(host.clone(), Some(event()), &options)
        .unwrap();
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    assert_eq!(
        SEEN.load(Ordering::Relaxed) - before,
        10,
        "the effect ran once"
    );

    let mut group = c.benchmark_group("one_sync_event");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("gears", |b| {
        b.iter(|| {
            plan.run_for_effects(host.clone(), Some(event()), &options)
                .unwrap()
        })
    });
    group.bench_function("hand_written", |b| {
        b.iter(|| {
            let Event::Key {
                key,
                event,
                key_type,
                ..
            } = event()
            else {
                unreachable!()
            };
            let record = KeyRecord {
                key,
                key_type,
                value: None,
                event: Some(event),
            };
            effect(black_box(&record))
        })
    });
    group.finish();
}

criterion_group!(benches, one_sync_event);
criterion_main!(benches);
