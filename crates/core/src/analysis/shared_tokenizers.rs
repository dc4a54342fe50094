//! Tokenizers parsed once per process and shared by every worker's sessions (a tokenizer is
//! read-only once configured). Unigram vocabularies, such as the multilingual model's 250,000
//! pieces, are held by [`CompactUnigram`] instead of the `tokenizers` crate's own model, which
//! would take close to 300 MB per copy.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokenizers::{
    DecoderWrapper, Encoding, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper,
    Tokenizer, TokenizerImpl, TruncationParams,
};

use super::shared::SharedByKey;
use super::unigram::CompactUnigram;

type CompactTokenizer = TokenizerImpl<
    CompactUnigram,
    NormalizerWrapper,
    PreTokenizerWrapper,
    PostProcessorWrapper,
    DecoderWrapper,
>;

/// The crate's model, or the compact one for a Unigram vocabulary.
enum Model {
    Standard(Box<Tokenizer>),
    Compact(Box<CompactTokenizer>),
}

/// A tokenizer configured to truncate and not pad, with the id Pulse pads with.
pub struct TextTokenizer {
    model: Model,
    pad_id: i64,
}

impl TextTokenizer {
    pub fn encode_fast(
        &self,
        text: &str,
        add_special_tokens: bool,
    ) -> tokenizers::Result<Encoding> {
        match &self.model {
            Model::Standard(t) => t.encode_fast(text, add_special_tokens),
            Model::Compact(t) => t.encode_fast(text, add_special_tokens),
        }
    }

    pub fn pad_id(&self) -> i64 {
        self.pad_id
    }

    pub fn is_compact(&self) -> bool {
        matches!(self.model, Model::Compact(_))
    }
}

static LOADED: SharedByKey<(PathBuf, usize), TextTokenizer> = SharedByKey::new();

/// The tokenizer in `file`, truncating at `max_length`, loaded now or shared with a live one.
pub fn load(file: &Path, max_length: usize) -> anyhow::Result<Arc<TextTokenizer>> {
    LOADED.get_or_load((file.to_path_buf(), max_length), || parse(file, max_length))
}

fn parse(file: &Path, max_length: usize) -> anyhow::Result<TextTokenizer> {
    let name = file.file_name().map(Path::new).unwrap_or(file).display();
    let json =
        std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{name} cannot be read: {e}"))?;
    // Anything the compact model does not take (another model, byte fallback) is read by the
    // crate, whose error is the one reported.
    let mut model = match serde_json::from_str::<CompactTokenizer>(&json) {
        Ok(compact) => Model::Compact(Box::new(compact)),
        Err(_) => Model::Standard(Box::new(
            json.parse::<Tokenizer>()
                .map_err(|e| anyhow::anyhow!("{name} cannot be read: {e}"))?,
        )),
    };
    drop(json);
    macro_rules! configure {
        ($t:expr) => {{
            let pad_id = $t
                .get_padding()
                .map(|p| p.pad_id)
                .or_else(|| $t.token_to_id("[PAD]"))
                .or_else(|| $t.token_to_id("<pad>"))
                .unwrap_or(0) as i64;
            $t.with_padding(None);
            $t.with_truncation(Some(TruncationParams {
                max_length,
                ..TruncationParams::default()
            }))
            .map_err(|e| anyhow::anyhow!("cannot set truncation: {e}"))?;
            pad_id
        }};
    }
    let pad_id = match &mut model {
        Model::Standard(t) => configure!(t),
        Model::Compact(t) => configure!(t),
    };
    Ok(TextTokenizer { model, pad_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
        "normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,
        "decoder":null,"model":{"type":"WordLevel","vocab":{"[UNK]":0,"[PAD]":1,"hello":2,
        "world":3},"unk_token":"[UNK]"}}"#;

    fn written(test: &str, contents: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pulse-tokenizers-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tokenizer.json");
        std::fs::write(&file, contents).unwrap();
        file
    }

    #[test]
    fn one_copy_while_in_use_and_none_after() {
        let file = written("shared", TINY);
        let a = load(&file, 8).unwrap();
        let b = load(&file, 8).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.pad_id(), 1);
        let other_length = load(&file, 4).unwrap();
        assert!(!Arc::ptr_eq(&a, &other_length));
        let ids = a.encode_fast("hello world", false).unwrap();
        assert!(!a.is_compact());
        assert_eq!(ids.get_ids(), &[2, 3]);

        let weak = Arc::downgrade(&a);
        drop((a, b));
        assert!(weak.upgrade().is_none(), "the last user's drop frees it");
    }

    #[test]
    fn unreadable_file_is_an_error_naming_it() {
        let file = written("broken", "{not json");
        let err = load(&file, 8).err().expect("must fail").to_string();
        assert!(err.contains("tokenizer.json"), "{err}");
    }
}
