//! Criterion benches for the core's hot paths: SSTable encode/decode, CRC32C, bundle
//! write/read, manifest hashing (after the write and during it, for bundles and `.keras`
//! archives), and output comparison over 100M elements.
//!
//!     cargo bench --bench core

use std::borrow::Cow;
use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use kerasafe::checkpoint::{self, sstable, BundleReader};
use kerasafe::h5::{H5Dataset, H5Group, H5Node};
use kerasafe::keras_zip::{self, WeightsSource};
use kerasafe::store::manifest;
use kerasafe::tensor::{DType, Tensor, TensorData};
use kerasafe::validate::{compare, Tolerance};

fn sstable_bench(c: &mut Criterion) {
    let keys: Vec<String> = (0..20_000)
        .map(|i| format!("model/layer_{i:05}/kernel/.ATTRIBUTES/VARIABLE_VALUE"))
        .collect();
    let value = vec![7u8; 24];
    let mut g = c.benchmark_group("sstable");
    g.throughput(Throughput::Elements(keys.len() as u64));
    g.bench_function("encode_20k", |b| {
        b.iter(|| {
            let mut w = sstable::TableWriter::new();
            for k in &keys {
                w.add(k.as_bytes(), &value).unwrap();
            }
            black_box(w.finish())
        })
    });
    let mut w = sstable::TableWriter::new();
    for k in &keys {
        w.add(k.as_bytes(), &value).unwrap();
    }
    let table = w.finish();
    g.bench_function("decode_20k", |b| {
        b.iter(|| black_box(sstable::read_table(&table).unwrap().len()))
    });
    g.finish();
}

fn crc_bench(c: &mut Criterion) {
    let data = vec![0x5au8; 256 << 20];
    let mut g = c.benchmark_group("crc32c");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("serial_256MiB", |b| {
        b.iter(|| black_box(crc32c::crc32c(&data)))
    });
    g.bench_function("parallel_256MiB", |b| {
        b.iter(|| black_box(checkpoint::parallel_crc32c(&data)))
    });
    g.finish();
}

/// 64 float32 tensors of 4 MiB, named `t00`..`t63`.
fn bundle_arrays() -> Vec<Vec<u8>> {
    (0..64).map(|i| vec![i as u8; 4 << 20]).collect()
}

fn bundle_tensors(arrays: &[Vec<u8>]) -> Vec<(String, Tensor<'_>)> {
    arrays
        .iter()
        .enumerate()
        .map(|(i, a)| {
            (
                format!("t{i:02}"),
                Tensor {
                    dtype: DType::F32,
                    shape: vec![(a.len() / 4) as u64],
                    data: TensorData::Bytes(Cow::Borrowed(a)),
                },
            )
        })
        .collect()
}

/// `(name, tensor)` pairs as the writer takes them.
fn by_name<'a>(tensors: &'a [(String, Tensor<'a>)]) -> Vec<(&'a str, Tensor<'a>)> {
    tensors
        .iter()
        .map(|(n, t)| (n.as_str(), t.clone()))
        .collect()
}

/// A group measuring throughput over all of `arrays`' bytes, 10 samples (each takes long).
fn bytes_group<'c>(
    c: &'c mut Criterion,
    name: &str,
    arrays: &[Vec<u8>],
) -> BenchmarkGroup<'c, WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(
        arrays.iter().map(|a| a.len() as u64).sum(),
    ));
    g.sample_size(10);
    g
}

fn bundle_bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("ckpt");
    let arrays = bundle_arrays();
    let tensors = bundle_tensors(&arrays);
    let named = by_name(&tensors);
    let mut g = bytes_group(c, "bundle", &arrays);
    g.bench_function("write_256MiB", |b| {
        b.iter(|| checkpoint::write(&prefix, &named).unwrap())
    });
    checkpoint::write(&prefix, &named).unwrap();
    let mut out: Vec<Vec<u8>> = arrays.iter().map(|a| vec![0u8; a.len()]).collect();
    g.bench_function("read_256MiB", |b| {
        b.iter(|| {
            let r = BundleReader::open(&prefix).unwrap();
            let jobs: Vec<(&str, &mut [u8])> = tensors
                .iter()
                .map(|(n, _)| n.as_str())
                .zip(out.iter_mut().map(|v| v.as_mut_slice()))
                .collect();
            r.read_many_into(jobs).unwrap();
        })
    });
    g.finish();
}

fn compare_bench(c: &mut Criterion) {
    let n: usize = 100_000_000;
    let a: Vec<u8> = (0..n)
        .flat_map(|i| (i as f32 * 1e-7).to_le_bytes())
        .collect();
    let mut b_bytes = a.clone();
    b_bytes[4 * (n / 2)] ^= 1;
    let e = Tensor {
        dtype: DType::F32,
        shape: vec![n as u64],
        data: TensorData::Bytes(Cow::Borrowed(&a)),
    };
    let x = Tensor {
        dtype: DType::F32,
        shape: vec![n as u64],
        data: TensorData::Bytes(Cow::Borrowed(&b_bytes)),
    };
    let mut g = c.benchmark_group("compare_outputs");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    g.bench_with_input(BenchmarkId::new("f32", n), &n, |bch, _| {
        bch.iter(|| {
            black_box(
                compare(&e, &x, Tolerance::for_dtype(DType::F32))
                    .unwrap()
                    .passed,
            )
        })
    });
    g.finish();
}

/// An artifact's bundle: written then hashed for the manifest (a second pass), against hashed
/// while written (`write_for_artifact`, the publish taking that digest).
fn manifest_bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("ckpt");
    let arrays = bundle_arrays();
    let tensors = bundle_tensors(&arrays);
    let named = by_name(&tensors);
    let mut g = bytes_group(c, "manifest", &arrays);
    checkpoint::write(&prefix, &named).unwrap();
    g.bench_function("hash_files_256MiB", |b| {
        b.iter(|| black_box(manifest::hash_files(dir.path()).unwrap()))
    });
    g.bench_function("write_then_hash_256MiB", |b| {
        b.iter(|| {
            checkpoint::write(&prefix, &named).unwrap();
            black_box(manifest::hash_staged(dir.path()).unwrap())
        })
    });
    g.bench_function("write_hashing_256MiB", |b| {
        b.iter(|| {
            checkpoint::write_for_artifact(&prefix, &named).unwrap();
            black_box(manifest::hash_staged(dir.path()).unwrap())
        })
    });

    // The same bytes as a `.keras` archive's weights (written outside libhdf5, file order).
    let mut tree = H5Group::new();
    for (name, t) in &tensors {
        tree.insert(
            name.as_str(),
            H5Node::Dataset(H5Dataset::from_tensor(t.clone())),
        )
        .unwrap();
    }
    let keras_dir = tempfile::tempdir().unwrap();
    let archive = keras_dir.path().join("model.keras");
    let write_archive = |hashing: bool| {
        let write = match hashing {
            true => keras_zip::write_archive_for_artifact,
            false => keras_zip::write_archive,
        };
        write(&archive, "{}", "{}", WeightsSource::Tree(&tree), &[]).unwrap();
        black_box(manifest::hash_staged(keras_dir.path()).unwrap())
    };
    g.bench_function("keras_write_then_hash_256MiB", |b| {
        b.iter(|| write_archive(false))
    });
    g.bench_function("keras_write_hashing_256MiB", |b| {
        b.iter(|| write_archive(true))
    });
    g.finish();
}

criterion_group!(
    benches,
    sstable_bench,
    crc_bench,
    bundle_bench,
    manifest_bench,
    compare_bench
);
criterion_main!(benches);
