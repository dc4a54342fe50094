//! Loading ONNX Runtime. `ort` opens `libonnxruntime.so` at run time (`load-dynamic`), so the
//! library is checked here first: a missing file, a file that is not a shared library or an
//! incompatible version each fail start-up with the path and the fix, never with a hang or a
//! panic deep inside a worker.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use anyhow::{bail, Context};
use ort::environment::Environment;

/// The environment variable `ort` and Pulse read the library path from.
pub const DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// How to get a runtime, appended to every load error.
const FIX: &str = "run `bash scripts/models.sh` (it installs ONNX Runtime from the PyPI `onnxruntime` wheel into .pulse/venv and prints the ORT_DYLIB_PATH to export), set analyzer.onnxruntime, or run with analyzer.backend = \"lexicon\"";

static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();
static LOADING: Mutex<()> = Mutex::new(());

/// The library path from the setting, else from `ORT_DYLIB_PATH`.
pub fn dylib_path(setting: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = setting {
        return Ok(p.to_path_buf());
    }
    match std::env::var_os(DYLIB_ENV) {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => bail!("no ONNX Runtime library configured: {DYLIB_ENV} is not set; {FIX}"),
    }
}

/// The process-wide ONNX Runtime environment, loading the library on first use.
pub fn environment(setting: Option<&Path>) -> anyhow::Result<&'static Environment> {
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let _guard = LOADING.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let path = dylib_path(setting)?;
    check_library(&path)?;
    let builder = ort::init_from(&path).map_err(|e| {
        anyhow::anyhow!(
            "cannot load ONNX Runtime from `{}`: {e}; {FIX}",
            path.display()
        )
    })?;
    let env = builder
        .with_name("pulse")
        .with_telemetry(false)
        .build()
        .with_context(|| {
            format!(
                "creating the ONNX Runtime environment from `{}`",
                path.display()
            )
        })?;
    tracing::info!(library = %path.display(), "ONNX Runtime loaded");
    Ok(ENVIRONMENT.get_or_init(|| env))
}

/// Checks that `path` is a readable ELF (or Mach-O / PE) shared library before `dlopen` sees it.
pub fn check_library(path: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| {
        anyhow::anyhow!(
            "ONNX Runtime library `{}` not found ({e}); {FIX}",
            path.display()
        )
    })?;
    if !meta.is_file() {
        bail!(
            "ONNX Runtime library `{}` is not a file; {FIX}",
            path.display()
        );
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot read ONNX Runtime library `{}` ({e}); {FIX}",
                path.display()
            )
        })?;
    let shared_library = magic == *b"\x7fELF"
        || magic == [0xcf, 0xfa, 0xed, 0xfe]
        || magic == [0xca, 0xfe, 0xba, 0xbe]
        || magic[..2] == *b"MZ";
    if !shared_library {
        bail!(
            "`{}` is not a shared library (wrong file in {DYLIB_ENV}?); {FIX}",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_wrong_library_is_refused_with_the_path_and_the_fix() {
        let err = check_library(Path::new("/nonexistent/libonnxruntime.so")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("/nonexistent/libonnxruntime.so") && msg.contains("scripts/models.sh")
        );

        let dir = std::env::temp_dir().join(format!("pulse-ort-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = dir.join("libonnxruntime.so");
        std::fs::write(&text, "not a library").unwrap();
        let msg = check_library(&text).unwrap_err().to_string();
        assert!(msg.contains("is not a shared library"), "{msg}");
        let msg = check_library(&dir).unwrap_err().to_string();
        assert!(msg.contains("is not a file"), "{msg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
