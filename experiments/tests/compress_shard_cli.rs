//! Sharded `claimlab compress` on the pinned SmolLM2: 3 shards (menus, plan, quantise, merge)
//! give a file byte-identical to a single run with the same settings; missing, duplicate and
//! mismatched shards, a foreign plan, another model and damaged parts are refused before any
//! output is written; an interrupted merge leaves no output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;

use common::compress::{compress, tmpdir};

/// The settings of every run here (quick, no proxy validation).
const ARGS: &[&str] = &[
    "--quick",
    "--validate",
    "0",
    "--target-bpw",
    "4.5",
    "--calib-tokens",
    "64",
    "--eval-tokens",
    "64",
];

/// What a merged SmolLM2 run reports as the single run does.
const LLAMA_SAME: &[&str] = &["perplexity_before", "perplexity_after", "gptq_tensors"];

fn claimlab(args: &[&str], extra: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_claimlab"))
        .args(["--json", "compress"])
        .args(args)
        .args(extra)
        .output()
        .expect("the claimlab binary runs")
}

fn ok(o: &Output) -> serde_json::Value {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    serde_json::from_slice(&o.stdout).expect("stdout is JSON")
}

/// Asserts the run failed with a message containing every one of `needles`; returns it.
fn refused(o: &Output, needles: &[&str]) -> String {
    assert!(
        !o.status.success(),
        "succeeded: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    // With --json the error is a JSON line on stdout.
    let msg = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!msg.contains("panicked"), "{msg}");
    for n in needles {
        assert!(msg.contains(n), "missing {n:?} in {msg}");
    }
    msg
}

/// Nothing was written at `out`, not even its temporary file.
fn nothing_at(out: &Path) {
    assert!(!out.exists(), "{} exists", out.display());
    let stem = out.file_name().unwrap().to_string_lossy().into_owned();
    for e in std::fs::read_dir(out.parent().unwrap()).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!n.starts_with(&stem), "left behind: {n}");
    }
}

fn p(d: &Path, name: &str) -> PathBuf {
    d.join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Rewrites one field of a JSON file into a new file.
fn forge(src: &Path, dst: &Path, edit: impl Fn(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(src).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(dst, serde_json::to_vec(&v).unwrap()).unwrap();
}

/// The files of a sharded run beside the single run's.
struct Sharded {
    d: PathBuf,
    single: PathBuf,
    single_bytes: Vec<u8>,
    menus: Vec<PathBuf>,
    plan: PathBuf,
    parts: Vec<PathBuf>,
}

/// Compresses with `args` once and in 3 shards, asserts the merged file equals the single
/// run's byte for byte (and its manifest and scores), and returns the files.
fn sharded_equals_single(tag: &str, args: &[&str], same: &[&str]) -> Sharded {
    let d = tmpdir("shard", tag);
    let t = Instant::now();
    let single = p(&d, "single.gguf");
    let js_single = compress(args, &single);
    let t_single = t.elapsed().as_secs_f64();

    // Round 1: menus, one shard at a time (shard 1 with one rayon thread: the work must not
    // depend on the thread count either).
    let t = Instant::now();
    let menus: Vec<PathBuf> = (0..3).map(|i| p(&d, &format!("menus-{i}.json"))).collect();
    for (i, m) in menus.iter().enumerate() {
        let shard = format!("{i}/3");
        let mut c = Command::new(env!("CARGO_BIN_EXE_claimlab"));
        c.args(["--json", "compress"])
            .args(args)
            .args(["--shard", &shard, "--out", s(m)]);
        if i == 1 {
            c.env("RAYON_NUM_THREADS", "1");
        }
        let js = ok(&c.output().unwrap());
        assert_eq!(js["stage"], "menus");
        assert!(js["tensors"].as_u64().unwrap() > 0);
    }
    let t_round1 = t.elapsed().as_secs_f64();

    // Plan (files in any order).
    let plan = p(&d, "plan.json");
    let js = ok(&claimlab(
        &["plan", "--out", s(&plan)],
        &[&menus[2], &menus[0], &menus[1]],
    ));
    assert_eq!(js["n_shards"], 3);
    assert_eq!(js["tensor_bytes"], js_single["tensor_bytes"]);

    // Round 2: quantise.
    let t = Instant::now();
    let parts: Vec<PathBuf> = (0..3).map(|i| p(&d, &format!("part-{i}.bin"))).collect();
    for (i, part) in parts.iter().enumerate() {
        let shard = format!("{i}/3");
        let js = ok(&claimlab(
            &[
                args,
                &["--shard", &shard, "--plan", s(&plan), "--out", s(part)],
            ]
            .concat(),
            &[],
        ));
        assert_eq!(js["stage"], "quantise");
    }
    let t_round2 = t.elapsed().as_secs_f64();

    // Merge: the same bytes as the single run, and the same score.
    let t = Instant::now();
    let merged = p(&d, "merged.gguf");
    let js = ok(&claimlab(
        &["merge", "--plan", s(&plan), "--out", s(&merged)],
        &[&parts[1], &parts[2], &parts[0]],
    ));
    let t_merge = t.elapsed().as_secs_f64();
    let (a, b) = (
        std::fs::read(&single).unwrap(),
        std::fs::read(&merged).unwrap(),
    );
    assert_eq!(a.len(), b.len(), "file sizes differ");
    assert!(a == b, "merged file differs from the single run");
    for &k in ["tensor_bytes"].iter().chain(same) {
        assert!(!js_single[k].is_null(), "{k} missing from the single run");
        assert_eq!(js[k], js_single[k], "{k}");
    }
    let chosen = |js: &serde_json::Value| -> Vec<(String, String)> {
        js["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["name"].to_string(), t["chosen"].to_string()))
            .collect()
    };
    assert_eq!(chosen(&js), chosen(&js_single));
    eprintln!(
        "{tag}: single run {t_single:.1} s; 3 shards: menus {t_round1:.1} s, quantise {t_round2:.1} s, merge {t_merge:.1} s (one after another)"
    );
    Sharded {
        d,
        single,
        single_bytes: a,
        menus,
        plan,
        parts,
    }
}

#[test]
fn three_shards_merge_byte_identical_to_one_run_and_bad_shards_are_refused() {
    let Sharded {
        d,
        single,
        single_bytes: a,
        menus,
        plan,
        parts,
    } = sharded_equals_single("rtn", ARGS, LLAMA_SAME);

    // Plan: missing, duplicate, mismatched shards.
    let bad_plan = p(&d, "bad-plan.json");
    refused(
        &claimlab(&["plan", "--out", s(&bad_plan)], &[&menus[0], &menus[2]]),
        &["missing shard(s) 1 of 3"],
    );
    refused(
        &claimlab(
            &["plan", "--out", s(&bad_plan)],
            &[&menus[0], &menus[1], &menus[1]],
        ),
        &["shard 1/3 is given twice"],
    );
    let other_model = p(&d, "menus-2-other-model.json");
    forge(&menus[2], &other_model, |v| {
        v["settings"]["model_fingerprint"] = "0123456789abcdef".into();
    });
    refused(
        &claimlab(
            &["plan", "--out", s(&bad_plan)],
            &[&menus[0], &menus[1], &other_model],
        ),
        &["other settings or another model", "model_fingerprint"],
    );
    let other_calib = p(&d, "menus-2-other-calib.json");
    forge(&menus[2], &other_calib, |v| {
        v["settings"]["calib_tokens"] = 32.into();
    });
    refused(
        &claimlab(
            &["plan", "--out", s(&bad_plan)],
            &[&menus[0], &menus[1], &other_calib],
        ),
        &["calib_tokens 32 vs 64"],
    );
    nothing_at(&bad_plan);

    // Round 2 with other settings than the plan's.
    let bad_part = p(&d, "bad-part.bin");
    let mut other = ARGS.to_vec();
    let pos = other.iter().position(|a| *a == "4.5").unwrap();
    other[pos] = "5";
    refused(
        &claimlab(
            &[
                &other[..],
                &["--shard", "0/3", "--plan", s(&plan), "--out", s(&bad_part)],
            ]
            .concat(),
            &[],
        ),
        &["the plan was made with other settings", "target_bytes"],
    );
    nothing_at(&bad_part);

    // Merge: missing, duplicate, foreign plan, another model, damaged and truncated parts.
    let bad = p(&d, "bad.gguf");
    let merge = |plan: &Path, extra: &[&str], parts: &[&Path]| {
        claimlab(
            &[
                &["merge", "--no-score", "--plan", s(plan), "--out", s(&bad)],
                extra,
            ]
            .concat(),
            parts,
        )
    };
    refused(
        &merge(&plan, &[], &[&parts[0], &parts[2]]),
        &["missing shard(s) 1 of 3"],
    );
    refused(
        &merge(&plan, &[], &[&parts[0], &parts[1], &parts[2], &parts[2]]),
        &["shard 2/3 is given twice"],
    );
    // A plan for another target, from the same menus (consistent but different settings).
    let (menus5, plan5): (Vec<PathBuf>, PathBuf) = (
        (0..3).map(|i| p(&d, &format!("menus5-{i}.json"))).collect(),
        p(&d, "plan5.json"),
    );
    for (src, dst) in menus.iter().zip(&menus5) {
        forge(src, dst, |v| {
            let t = v["settings"]["target_bytes"].as_u64().unwrap();
            v["settings"]["target_bytes"] = (t + t / 9).into();
        });
    }
    ok(&claimlab(
        &["plan", "--out", s(&plan5)],
        &menus5.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
    ));
    refused(
        &merge(&plan5, &[], &[&parts[0], &parts[1], &parts[2]]),
        &["made from another plan"],
    );
    // An edited plan no longer matches its fingerprint.
    let edited = p(&d, "plan-edited.json");
    forge(&plan, &edited, |v| {
        v["settings"]["eval_tokens"] = 128.into();
    });
    refused(
        &merge(&edited, &[], &[&parts[0], &parts[1], &parts[2]]),
        &["edited or damaged"],
    );
    refused(
        &merge(
            &plan,
            &["--model", s(&single)],
            &[&parts[0], &parts[1], &parts[2]],
        ),
        &["model fingerprint"],
    );
    let damaged = p(&d, "part-1-damaged.bin");
    let mut bytes = std::fs::read(&parts[1]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&damaged, &bytes).unwrap();
    refused(
        &merge(&plan, &[], &[&parts[0], &damaged, &parts[2]]),
        &["damaged"],
    );
    std::fs::write(&damaged, &bytes[..last]).unwrap();
    refused(
        &merge(&plan, &[], &[&parts[0], &damaged, &parts[2]]),
        &["truncated or damaged"],
    );
    nothing_at(&bad);

    // Interrupted merge: killed between writing its temporary file and the rename.
    let out = p(&d, "interrupted.gguf");
    let mut child = Command::new(env!("CARGO_BIN_EXE_claimlab"))
        .args([
            "--json",
            "compress",
            "merge",
            "--no-score",
            "--plan",
            s(&plan),
            "--out",
            s(&out),
        ])
        .args(&parts)
        .env("CLAIMLAB_MERGE_PAUSE_MS", "120000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let tmp_seen = loop {
        let tmp = std::fs::read_dir(&d)
            .unwrap()
            .filter_map(Result::ok)
            .find(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("interrupted.gguf.tmp")
            });
        // The temporary file is complete once it is as long as the single run's file.
        if let Some(e) = tmp {
            if e.metadata().map(|m| m.len()).unwrap_or(0) == a.len() as u64 {
                break true;
            }
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    let _ = child.wait();
    assert!(tmp_seen, "the merge never wrote its temporary file");
    assert!(!out.exists(), "an interrupted merge left {}", out.display());
    let _ = std::fs::remove_dir_all(&d);
}

/// GPTQ (calibration redone in round 2) merges to the single run's bytes too:
/// `cargo test --release -p experiments --test compress_shard_cli -- --ignored`. Passed on
/// 2026-11-27 in 388 s wall at load 6-8 on 2 cores, 215 s of CPU (user 196 + sys 18: single run
/// 128 s, menus 101 s, quantise 156 s, merge 3 s of wall), so at least ~110 s on an idle
/// 2-core machine: over the default suite's budget, hence ignored.
#[test]
#[ignore = "about 2-4 minutes on 2 idle cores (215 s of CPU); run with --ignored"]
fn three_gptq_shards_merge_byte_identical_to_one_run() {
    let r = sharded_equals_single("gptq", &[ARGS, &["--method", "gptq"]].concat(), LLAMA_SAME);
    let _ = std::fs::remove_dir_all(&r.d);
}

/// MiniLM (`--model minilm`) in 3 shards: each shard measures the sensitivity of its own
/// matrices; the merged GGUF equals the single run's byte for byte, with the same fidelity, at a
/// target between the smallest and the largest menu size so that the types are mixed.
#[test]
fn three_minilm_shards_merge_byte_identical_to_one_run() {
    let args = [
        "--model",
        "minilm",
        "--quick",
        "--validate",
        "0",
        "--target-bpw",
        "5",
        "--calib-tokens",
        "64",
        "--eval-tokens",
        "160",
    ];
    let r = sharded_equals_single("bert", &args, &["fidelity", "tokenizer_mismatches"]);
    // The allocation mixes types (the check above would be weak on a uniform choice).
    let single = claimlab_weights::Model::open(&r.single).unwrap();
    let mut types: Vec<String> = single
        .tensors()
        .iter()
        .map(|t| t.dtype.to_string())
        .collect();
    types.sort();
    types.dedup();
    assert!(types.len() >= 3, "{types:?}");
    // Another model than the plan's (the compressed GGUF, itself a BERT input) is refused.
    let bad = p(&r.d, "bad.gguf");
    refused(
        &claimlab(
            &[
                "merge",
                "--no-score",
                "--plan",
                s(&r.plan),
                "--model",
                s(&r.single),
                "--out",
                s(&bad),
            ],
            &r.parts.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
        ),
        &["model fingerprint"],
    );
    nothing_at(&bad);
    // A shard refuses what a single run refuses, before any work.
    let menus = p(&r.d, "menus-gptq.json");
    refused(
        &claimlab(
            &[
                &args[..],
                &["--method", "gptq", "--shard", "0/3", "--out", s(&menus)],
            ]
            .concat(),
            &[],
        ),
        &["not supported for BERT"],
    );
    nothing_at(&menus);
    let _ = std::fs::remove_dir_all(&r.d);
}
