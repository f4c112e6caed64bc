//! Seeded random-mutation fuzzing of both parsers inside the normal test suite (the libFuzzer
//! targets in `crates/weights/fuzz/` need nightly and cargo-fuzz; this runs everywhere).
//!
//! Small valid files are mutated 10,000 times each (bit flips, interesting bytes and 64-bit
//! values, truncation, insertion, deletion, duplicated chunks) and fed to the same entry points
//! the fuzz targets use. A panic fails the test and writes the input to `tests/corpus/` so that
//! [`replay_corpus`] keeps checking it after the fix.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use claimlab_testkit::rand::RngExt;
use claimlab_testkit::{rng, Xoshiro256PlusPlus};
use claimlab_weights::fuzzing;
use common::*;

const MUTATIONS: usize = 10_000;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("corpus")
}

/// A GGUF seed holding one tensor of every supported GGML type (random bytes as data, f16 scales
/// forced finite so the clean seed converts) plus metadata of every value type.
fn all_types_gguf() -> Vec<u8> {
    let mut r = rng(7);
    let mut g = tiny_llama();
    g.kv("t.u8", 0, &[1])
        .kv("t.i8", 1, &[2])
        .kv("t.u16", 2, &[3, 0])
        .kv("t.i16", 3, &[4, 0])
        .kv("t.bool", 7, &[0])
        .kv("t.u64", 10, &5u64.to_le_bytes())
        .kv("t.i64", 11, &6u64.to_le_bytes())
        .kv("t.f64", 12, &7f64.to_le_bytes());
    // (ggml id, elems per block, bytes per block)
    let types = [
        (1u32, 1usize, 2usize),
        (2, 32, 18),
        (3, 32, 20),
        (6, 32, 22),
        (7, 32, 24),
        (8, 32, 34),
        (10, 256, 84),
        (11, 256, 110),
        (12, 256, 144),
        (13, 256, 176),
        (14, 256, 210),
        (15, 256, 292),
        (30, 1, 2),
    ];
    for (id, be, bb) in types {
        let mut data: Vec<u8> = (0..bb).map(|_| r.random_range(0..=255u8)).collect();
        // Small positive f16 / bf16 / f32 everywhere a scale could sit: 0x3C00 is f16 1.0.
        for pair in data.chunks_mut(2) {
            if pair.len() == 2 && (pair[1] & 0x7C) == 0x7C {
                pair[1] &= 0x3F;
            }
        }
        if id == 15 {
            data[0..4].copy_from_slice(&0.5f32.to_le_bytes());
        }
        if id == 30 {
            data = vec![0x80, 0x3F];
        }
        g.tensor(&format!("t{id}.weight"), &[be as u64], id, &data);
    }
    g.bytes()
}

fn seed_safetensors() -> Vec<u8> {
    let header = r#"{"__metadata__": {"format": "pt"},
        "embeddings.word_embeddings.weight": {"dtype": "F32", "shape": [5, 4], "data_offsets": [0, 80]},
        "encoder.layer.0.attention.self.query.weight": {"dtype": "F16", "shape": [4, 4], "data_offsets": [80, 112]},
        "encoder.layer.0.attention.self.query.bias": {"dtype": "BF16", "shape": [4], "data_offsets": [112, 120]},
        "embeddings.position_ids": {"dtype": "I64", "shape": [1, 2], "data_offsets": [120, 136]}}"#;
    let mut data = f32s(&[0.25; 20]);
    data.extend([0x00, 0x3C].repeat(16));
    data.extend([0x80, 0x3F].repeat(4));
    data.extend([0u8; 16]);
    st(header, &data)
}

const INTERESTING_U64: [u64; 10] = [
    0,
    1,
    7,
    32,
    255,
    1 << 31,
    1 << 32,
    1 << 60,
    u64::MAX,
    u64::MAX - 31,
];

fn mutate(r: &mut Xoshiro256PlusPlus, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    let n_ops = r.random_range(1..=4);
    for _ in 0..n_ops {
        if b.is_empty() {
            b.push(0);
        }
        let len = b.len();
        match r.random_range(0..8) {
            0 => {
                let i = r.random_range(0..len);
                b[i] ^= 1 << r.random_range(0..8);
            }
            1 => {
                let i = r.random_range(0..len);
                b[i] = [0u8, 1, 0x7F, 0x80, 0xFF, 9, 8][r.random_range(0..7)];
            }
            2 if len >= 8 => {
                let i = r.random_range(0..=len - 8);
                let v = INTERESTING_U64[r.random_range(0..INTERESTING_U64.len())];
                b[i..i + 8].copy_from_slice(&v.to_le_bytes());
            }
            3 if len >= 4 => {
                // Overwrite a u32 (types, dims counts) with a small or odd value.
                let i = r.random_range(0..=len - 4);
                let v: u32 = [0, 1, 4, 9, 13, 27, 31, 99, u32::MAX][r.random_range(0..9)];
                b[i..i + 4].copy_from_slice(&v.to_le_bytes());
            }
            4 => b.truncate(r.random_range(0..len)),
            5 => {
                let i = r.random_range(0..=len);
                let k = r.random_range(1..16);
                let ins: Vec<u8> = (0..k).map(|_| r.random_range(0..=255u8)).collect();
                b.splice(i..i, ins);
            }
            6 => {
                let i = r.random_range(0..len);
                let k = r.random_range(1..=(len - i).min(64));
                b.drain(i..i + k);
            }
            _ => {
                let i = r.random_range(0..len);
                let k = r.random_range(1..=(len - i).min(64));
                let chunk = b[i..i + k].to_vec();
                let j = r.random_range(0..=b.len());
                b.splice(j..j, chunk);
            }
        }
    }
    b
}

fn run_mutations(name: &str, seed: &[u8], target: fn(&[u8]), seed_no: u64) {
    // The clean seed must go through without panicking too.
    target(seed);
    let mut r = rng(seed_no);
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut crashes = Vec::new();
    for i in 0..MUTATIONS {
        let input = mutate(&mut r, seed);
        if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
            let p = corpus_dir().join(format!("{name}-crash-{seed_no}-{i}"));
            let _ = std::fs::write(&p, &input);
            crashes.push(p);
        }
    }
    std::panic::set_hook(prev);
    assert!(
        crashes.is_empty(),
        "{} panicking inputs saved: {crashes:?}",
        crashes.len()
    );
}

#[test]
fn gguf_mutations_never_panic() {
    run_mutations("gguf", &tiny_llama().bytes(), fuzzing::gguf, 1);
    run_mutations("gguf", &all_types_gguf(), fuzzing::gguf, 2);
}

#[test]
fn safetensors_mutations_never_panic() {
    run_mutations("safetensors", &seed_safetensors(), fuzzing::safetensors, 3);
}

/// Replays every saved input (`gguf-*` through the GGUF entry point, `safetensors-*` through the
/// safetensors one, anything else through both).
#[test]
fn replay_corpus() {
    let Ok(rd) = std::fs::read_dir(corpus_dir()) else {
        return;
    };
    for entry in rd {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with(".md") {
            continue;
        }
        let data = std::fs::read(&p).unwrap();
        if !name.starts_with("safetensors") {
            fuzzing::gguf(&data);
        }
        if !name.starts_with("gguf") {
            fuzzing::safetensors(&data);
        }
    }
}

#[test]
fn seeds_are_valid() {
    // The seeds exercise the converters only if they parse cleanly.
    let m = claimlab_weights::Model::from_gguf_bytes(all_types_gguf()).unwrap();
    for t in m.tensors() {
        m.tensor_f32(&t.name)
            .unwrap_or_else(|e| panic!("{}: {e}", t.name));
    }
    claimlab_weights::parse_safetensors_bytes(&seed_safetensors()).unwrap();
}

/// Writes the seeds to `crates/weights/fuzz/seeds/` for cargo-fuzz. Run after changing them:
/// `cargo test --release -p claimlab-weights --test fuzz_mutations -- --ignored write_fuzz_seeds`
#[test]
#[ignore = "writes files into the source tree; run by hand"]
fn write_fuzz_seeds() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("seeds");
    for (dir, name, bytes) in [
        ("gguf", "tiny-llama-gguf.bin", tiny_llama().bytes()),
        ("gguf", "all-types-gguf.bin", all_types_gguf()),
        ("safetensors", "bert-safetensors.bin", seed_safetensors()),
    ] {
        let d = root.join(dir);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), bytes).unwrap();
    }
}
