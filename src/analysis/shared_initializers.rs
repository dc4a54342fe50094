//! Large initializers (the multilingual model's 96 MB of word embeddings) read once per process
//! and given to every worker's session through ONNX Runtime's `AddInitializer`, which uses the
//! tensor in place: without this each session deserialises its own copy from the model.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use anyhow::Context;
use ort::value::{DynValue, Tensor};

use super::bundle::{InitializerType, SharedInitializer};

type Key = (PathBuf, String);

/// Held weakly: the tensor goes when the last session using it does.
static LOADED: Mutex<Vec<(Key, Weak<DynValue>)>> = Mutex::new(Vec::new());

/// The named initializer of the bundle in `dir`, loaded now or shared with a live session.
pub fn load(dir: &Path, init: &SharedInitializer) -> anyhow::Result<(String, Arc<DynValue>)> {
    let key = (dir.join(&init.file), init.name.clone());
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    loaded.retain(|(_, weak)| weak.strong_count() > 0);
    if let Some(value) = loaded
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, weak)| weak.upgrade())
    {
        return Ok((init.name.clone(), value));
    }
    let bytes = std::fs::read(&key.0).with_context(|| format!("reading {}", key.0.display()))?;
    let shape = init.shape.clone();
    let value: DynValue = match init.dtype {
        InitializerType::Uint8 => Tensor::from_array((shape, bytes))?.into_dyn(),
        InitializerType::Int8 => Tensor::from_array((
            shape,
            bytes.into_iter().map(|b| b as i8).collect::<Vec<_>>(),
        ))?
        .into_dyn(),
        InitializerType::Float32 => {
            let floats: Vec<f32> = bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Tensor::from_array((shape, floats))?.into_dyn()
        }
    };
    let value = Arc::new(value);
    loaded.push((key, Arc::downgrade(&value)));
    Ok((init.name.clone(), value))
}
