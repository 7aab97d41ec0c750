//! Nanoseconds per Toeplitz hash: the table form (what generated code and the spread
//! evaluation use) against the bit-by-bit reference, for IPv4 and IPv6 4-tuples.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use maestro_runtime::rss::{toeplitz_bitwise, HashInput, Reta, Toeplitz, MICROSOFT_KEY};

fn bench(c: &mut Criterion) {
    let t = Toeplitz::new(&MICROSOFT_KEY).expect("40-byte key");
    let reta = Reta::round_robin(512, 16).expect("valid RETA");
    // 1024 distinct tuples so the branch predictor cannot learn one input.
    let v4: Vec<HashInput> = (0..1024u32)
        .map(|i| {
            let s = i.wrapping_mul(0x9e37_79b9);
            HashInput::ipv4(s.into(), (!s).into(), i as u16, (i >> 3) as u16, true)
        })
        .collect();
    let v6: Vec<HashInput> = (0..1024u32)
        .map(|i| {
            let s = u128::from(i.wrapping_mul(0x9e37_79b9)) << 64 | u128::from(i);
            HashInput::ipv6(s.into(), (!s).into(), i as u16, 80, true)
        })
        .collect();
    let mut g = c.benchmark_group("toeplitz");
    g.throughput(Throughput::Elements(1024));
    g.bench_function("ipv4-l4 table", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for x in &v4 {
                acc ^= t.hash_unchecked(black_box(x.as_bytes()));
            }
            acc
        })
    });
    g.bench_function("ipv4-l4 table + reta", |b| {
        b.iter(|| {
            let mut acc = 0u16;
            for x in &v4 {
                acc ^= reta.queue(t.hash_unchecked(black_box(x.as_bytes())));
            }
            acc
        })
    });
    g.bench_function("ipv4-l4 bitwise", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for x in &v4 {
                acc ^= toeplitz_bitwise(&MICROSOFT_KEY, black_box(x.as_bytes()));
            }
            acc
        })
    });
    g.bench_function("ipv6-l4 table", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for x in &v6 {
                acc ^= t.hash_unchecked(black_box(x.as_bytes()));
            }
            acc
        })
    });
    g.finish();
    c.bench_function("toeplitz key tables (40 B)", |b| {
        b.iter(|| Toeplitz::new(black_box(&MICROSOFT_KEY)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
