//! The cross-shard batch codec: encode + decode of a 10k-record batch of
//! `(String /*17 chars*/, u64, Vec<(String, String)> /*2 fields*/)`, in bytes per second of
//! encoded batch. The hand-written peer encodes and decodes the same records as one
//! `Vec` with plain bincode (standard configuration, no header, no per-record framing).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gears_benches::{codec_records, CodecRecord};
use gears_core::codec::{decode_batch, encode_batch};

const RECORDS: usize = 10_000;

fn codec_10k_records(c: &mut Criterion) {
    let records = codec_records(RECORDS, 7);
    let encoded = encode_batch(&records).expect("encodes");
    assert_eq!(
        decode_batch::<CodecRecord>(&encoded).expect("decodes"),
        records
    );
    let config = bincode::config::standard();
    let plain = bincode::encode_to_vec(&records, config).expect("encodes");

    let mut group = c.benchmark_group("codec_10k_records");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(encoded.len() as u64));
    group.bench_function("gears/encode+decode", |b| {
        b.iter(|| {
            let bytes = encode_batch(black_box(&records)).expect("encodes");
            black_box(decode_batch::<CodecRecord>(&bytes).expect("decodes"))
        })
    });
    group.bench_function("gears/encode", |b| {
        b.iter(|| black_box(encode_batch(black_box(&records)).expect("encodes")))
    });
    group.bench_function("gears/decode", |b| {
        b.iter(|| black_box(decode_batch::<CodecRecord>(black_box(&encoded)).expect("decodes")))
    });
    group.throughput(Throughput::Bytes(plain.len() as u64));
    group.bench_function("hand_written/encode+decode", |b| {
        b.iter(|| {
            let bytes = bincode::encode_to_vec(black_box(&records), config).expect("encodes");
            let (out, _): (Vec<CodecRecord>, usize) =
                bincode::decode_from_slice(&bytes, config).expect("decodes");
            black_box(out)
        })
    });
    group.finish();
    println!(
        "codec_10k_records: gears batch {} bytes, plain bincode {} bytes",
        encoded.len(),
        plain.len()
    );
}

criterion_group!(benches, codec_10k_records);
criterion_main!(benches);
