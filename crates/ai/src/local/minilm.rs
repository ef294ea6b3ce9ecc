//! all-MiniLM-L6-v2 sentence embeddings with candle (BERT, mean pooling over the attention
//! mask, L2 normalisation → 384 dims). Used for rule-book intent matching.

use std::sync::Arc;

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};

use super::wordpiece::WordPiece;
use crate::models::ModelPaths;
use crate::{AiError, EmbedKind, Embedder, Result};

/// The model was trained on sequences of at most 128 tokens.
const MAX_TOKENS: usize = 128;

pub struct MiniLm {
    inner: Arc<Inner>,
}

struct Inner {
    model: BertModel,
    tokenizer: WordPiece,
}

fn err(e: candle_core::Error) -> AiError {
    AiError::inference("minilm", e)
}

impl MiniLm {
    pub fn load(paths: &ModelPaths) -> Result<Self> {
        let dir = paths.minilm_dir()?;
        let cfg_text = std::fs::read_to_string(dir.join("config.json"))?;
        let config: Config = serde_json::from_str(&cfg_text).map_err(|e| AiError::Config(format!("minilm config: {e}")))?;
        // SAFETY: the weights file is memory-mapped read-only and not modified while in use.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[dir.join("model.safetensors")], DType::F32, &Device::Cpu) }.map_err(err)?;
        let model = BertModel::load(vb, &config).map_err(err)?;
        let tokenizer = WordPiece::from_file(&dir.join("vocab.txt"), MAX_TOKENS)?;
        Ok(MiniLm { inner: Arc::new(Inner { model, tokenizer }) })
    }

    /// Embeds texts (blocking).
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        self.inner.embed(texts)
    }
}

impl Inner {
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Vec<u32>> = texts.iter().map(|t| self.tokenizer.encode(t)).collect();
        let len = ids.iter().map(Vec::len).max().unwrap_or(2);
        let (mut flat, mut mask) = (Vec::with_capacity(ids.len() * len), Vec::with_capacity(ids.len() * len));
        for seq in &ids {
            flat.extend(seq.iter().copied().chain(std::iter::repeat(0)).take(len));
            mask.extend((0..len).map(|i| u32::from(i < seq.len())));
        }
        let dev = Device::Cpu;
        let input = Tensor::from_vec(flat, (ids.len(), len), &dev).map_err(err)?;
        let mask = Tensor::from_vec(mask, (ids.len(), len), &dev).map_err(err)?;
        let types = input.zeros_like().map_err(err)?;
        let hidden = self.model.forward(&input, &types, Some(&mask)).map_err(err)?; // [b, len, 384]
        let m = mask.to_dtype(DType::F32).map_err(err)?.unsqueeze(2).map_err(err)?;
        let summed = hidden.broadcast_mul(&m).map_err(err)?.sum(1).map_err(err)?;
        let counts = m.sum(1).map_err(err)?;
        let mean = summed.broadcast_div(&counts).map_err(err)?;
        let norm = mean.sqr().map_err(err)?.sum_keepdim(1).map_err(err)?.sqrt().map_err(err)?;
        let unit = mean.broadcast_div(&norm).map_err(err)?;
        unit.to_vec2::<f32>().map_err(err)
    }
}

#[async_trait]
impl Embedder for MiniLm {
    fn name(&self) -> &'static str {
        "all-minilm-l6-v2"
    }

    fn dim(&self) -> usize {
        384
    }

    async fn embed(&self, texts: Vec<String>, _kind: EmbedKind) -> Result<Vec<Vec<f32>>> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.embed(&texts)).await.map_err(|e| AiError::inference("minilm", e))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paraphrases_are_close_and_unrelated_text_is_not() {
        let m = MiniLm::load(&ModelPaths::default()).unwrap();
        let v = m.embed_blocking(&["I want to cancel my order".into(), "Please cancel the purchase I made".into(), "The weather is sunny and warm today".into()]).unwrap();
        let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        assert_eq!(v[0].len(), 384);
        assert!((cos(&v[0], &v[0]) - 1.0).abs() < 1e-4);
        let (para, other) = (cos(&v[0], &v[1]), cos(&v[0], &v[2]));
        eprintln!("minilm: paraphrase {para:.3}, unrelated {other:.3}");
        assert!(para > 0.6, "{para}");
        assert!(other < 0.3, "{other}");
        // Batching pads: a sentence embeds the same alone and in a batch.
        let alone = m.embed_blocking(&["I want to cancel my order".into()]).unwrap();
        assert!(cos(&alone[0], &v[0]) > 0.999);
    }
}
