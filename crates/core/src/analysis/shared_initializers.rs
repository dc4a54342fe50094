//! Large initializers (the multilingual model's 96 MB of word embeddings) read once per process
//! and given to every worker's session through ONNX Runtime's `AddInitializer`, which uses the
//! tensor in place: without this each session deserialises its own copy from the model.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use ort::value::{DynValue, Tensor};

use super::bundle::{InitializerType, SharedInitializer};
use super::shared::SharedByKey;

static LOADED: SharedByKey<(PathBuf, String), DynValue> = SharedByKey::new();

/// The named initializer of the bundle in `dir`, loaded now or shared with a live session.
pub fn load(dir: &Path, init: &SharedInitializer) -> anyhow::Result<(String, Arc<DynValue>)> {
    let file = dir.join(&init.file);
    let value = LOADED.get_or_load((file.clone(), init.name.clone()), || read(&file, init))?;
    Ok((init.name.clone(), value))
}

fn read(file: &Path, init: &SharedInitializer) -> anyhow::Result<DynValue> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let shape = init.shape.clone();
    Ok(match init.dtype {
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
    })
}
