//! Converts a CTranslate2 (faster-whisper) Whisper model to whisper.cpp's ggml file: parses
//! CT2 v6 `model.bin`, splits the fused QKV projections, computes the Slaney mel filterbank and
//! writes the byte-level vocabulary. 2-D weights are stored as f16, the rest as f32.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

/// A CT2 tensor: shape and values (converted to f32).
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

struct Reader<'a> {
    b: &'a [u8],
    o: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let s = self.b.get(self.o..self.o + n).ok_or_else(|| anyhow!("CT2 file truncated at byte {}", self.o))?;
        self.o += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> { Ok(self.take(1)?[0]) }
    fn u16(&mut self) -> Result<u16> { Ok(u16::from_le_bytes(self.take(2)?.try_into()?)) }
    fn u32(&mut self) -> Result<u32> { Ok(u32::from_le_bytes(self.take(4)?.try_into()?)) }
    fn string(&mut self) -> Result<String> {
        let n = self.u16()? as usize;
        let s = self.take(n)?;
        Ok(String::from_utf8_lossy(&s[..n.saturating_sub(1)]).into_owned())
    }
}

/// Parses a CT2 v6 model file into named tensors.
pub fn read_ct2(bytes: &[u8]) -> Result<HashMap<String, Tensor>> {
    let mut r = Reader { b: bytes, o: 0 };
    let version = r.u32()?;
    if version < 5 {
        bail!("unsupported CT2 model version {version}");
    }
    let _name = r.string()?;
    let _revision = r.u32()?;
    let n = r.u32()? as usize;
    let mut out = HashMap::with_capacity(n);
    for _ in 0..n {
        let name = r.string()?;
        let rank = r.u8()? as usize;
        let shape: Vec<usize> = (0..rank).map(|_| r.u32().map(|v| v as usize)).collect::<Result<_>>()?;
        let dtype = r.u8()?;
        let nbytes = r.u32()? as usize;
        let raw = r.take(nbytes)?;
        let data: Vec<f32> = match dtype {
            0 => raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            1 => raw.iter().map(|&v| v as i8 as f32).collect(),
            2 => raw.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as f32).collect(),
            3 => raw.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32).collect(),
            4 => raw.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            d => bail!("tensor {name}: unsupported CT2 dtype {d}"),
        };
        let expect: usize = shape.iter().product::<usize>().max(1);
        if data.len() != expect {
            bail!("tensor {name}: {} values for shape {shape:?}", data.len());
        }
        out.insert(name, Tensor { shape, data });
    }
    Ok(out)
}

fn hz_to_mel(f: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let (min_log_hz, logstep) = (1000.0, (6.4f64).ln() / 27.0);
    if f >= min_log_hz { min_log_hz / f_sp + (f / min_log_hz).ln() / logstep } else { f / f_sp }
}

fn mel_to_hz(m: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let (min_log_hz, logstep) = (1000.0, (6.4f64).ln() / 27.0);
    let min_log_mel = min_log_hz / f_sp;
    if m >= min_log_mel { min_log_hz * (logstep * (m - min_log_mel)).exp() } else { f_sp * m }
}

/// librosa.filters.mel(sr, n_fft, n_mels) with Slaney scale and norm: `[n_mels][n_fft/2+1]`.
pub fn mel_filterbank(sr: f64, n_fft: usize, n_mels: usize) -> Vec<Vec<f32>> {
    let bins = n_fft / 2 + 1;
    let fft_freqs: Vec<f64> = (0..bins).map(|i| i as f64 * sr / n_fft as f64).collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(sr / 2.0));
    let mel_f: Vec<f64> = (0..n_mels + 2).map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64)).collect();
    (0..n_mels)
        .map(|m| {
            let enorm = 2.0 / (mel_f[m + 2] - mel_f[m]);
            fft_freqs
                .iter()
                .map(|&f| {
                    let lower = (f - mel_f[m]) / (mel_f[m + 1] - mel_f[m]);
                    let upper = (mel_f[m + 2] - f) / (mel_f[m + 2] - mel_f[m + 1]);
                    (lower.min(upper).max(0.0) * enorm) as f32
                })
                .collect()
        })
        .collect()
}

/// GPT-2 byte-level BPE: the printable character each byte is written as.
fn byte_decoder() -> HashMap<char, u8> {
    let mut bs: Vec<u32> = (b'!' as u32..=b'~' as u32).chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    bs.iter().zip(&cs).filter_map(|(&b, &c)| char::from_u32(c).map(|ch| (ch, b as u8))).collect()
}

/// Converts `dir` (model.bin, vocabulary.txt) into the ggml file `out`.
pub fn convert(dir: &Path, out: &Path) -> Result<()> {
    let bytes = std::fs::read(dir.join("model.bin")).with_context(|| format!("reading {}", dir.join("model.bin").display()))?;
    let v = read_ct2(&bytes)?;
    drop(bytes);
    let get = |k: &str| v.get(k).ok_or_else(|| anyhow!("CT2 model has no tensor {k}"));
    let layers = |prefix: &str| (0..).take_while(|i| v.contains_key(&format!("{prefix}/layer_{i}/ffn/layer_norm/gamma"))).count();
    let (n_audio_layer, n_text_layer) = (layers("encoder"), layers("decoder"));
    let emb = get("decoder/embeddings/weight")?;
    let (n_vocab, d) = (emb.shape[0], emb.shape[1]);
    let n_audio_ctx = get("encoder/position_encodings/encodings")?.shape[0];
    let n_text_ctx = get("decoder/position_encodings/encodings")?.shape[0];
    let n_head = get("encoder/num_heads").map(|t| t.data[0] as usize).unwrap_or(d / 64);
    let n_mels = get("encoder/conv1/weight")?.shape[1];

    let vocab_text = std::fs::read_to_string(dir.join("vocabulary.txt")).context("reading vocabulary.txt")?;
    let vocab: Vec<&str> = vocab_text.split('\n').collect();
    let n_base = vocab.iter().position(|t| *t == "<|endoftext|>").ok_or_else(|| anyhow!("vocabulary.txt has no <|endoftext|>"))?;
    let dec = byte_decoder();

    let mut t: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let mut add = |name: &str, shape: Vec<usize>, data: Vec<f32>| t.push((name.to_string(), shape, data));
    let copy = |k: &str| -> Result<(Vec<usize>, Vec<f32>)> { let x = get(k)?; Ok((x.shape.clone(), x.data.clone())) };
    let (s, x) = copy("encoder/position_encodings/encodings")?; add("encoder.positional_embedding", s, x);
    for c in ["conv1", "conv2"] {
        let (s, x) = copy(&format!("encoder/{c}/weight"))?; add(&format!("encoder.{c}.weight"), s, x);
        let (s, x) = copy(&format!("encoder/{c}/bias"))?; add(&format!("encoder.{c}.bias"), vec![s[0], 1], x);
    }
    let lin = |t: &mut Vec<(String, Vec<usize>, Vec<f32>)>, dst: &str, src: &str| -> Result<()> {
        let (s, x) = copy(&format!("{src}/weight"))?; t.push((format!("{dst}.weight"), s, x));
        let (s, x) = copy(&format!("{src}/bias"))?; t.push((format!("{dst}.bias"), s, x));
        Ok(())
    };
    let ln = |t: &mut Vec<(String, Vec<usize>, Vec<f32>)>, dst: &str, src: &str| -> Result<()> {
        let (s, x) = copy(&format!("{src}/gamma"))?; t.push((format!("{dst}.weight"), s, x));
        let (s, x) = copy(&format!("{src}/beta"))?; t.push((format!("{dst}.bias"), s, x));
        Ok(())
    };
    // Fused [3d, d] QKV → query (w, b), key (w only: its bias must be zero), value (w, b).
    let qkv = |t: &mut Vec<(String, Vec<usize>, Vec<f32>)>, dst: &str, src: &str| -> Result<()> {
        let (w, b) = (get(&format!("{src}/weight"))?, get(&format!("{src}/bias"))?);
        if b.data[d..2 * d].iter().any(|&x| x != 0.0) {
            bail!("{src}: key bias is not zero");
        }
        let rows = |a: usize, z: usize| w.data[a * d..z * d].to_vec();
        t.push((format!("{dst}.query.weight"), vec![d, d], rows(0, d)));
        t.push((format!("{dst}.query.bias"), vec![d], b.data[..d].to_vec()));
        t.push((format!("{dst}.key.weight"), vec![d, d], rows(d, 2 * d)));
        t.push((format!("{dst}.value.weight"), vec![d, d], rows(2 * d, 3 * d)));
        t.push((format!("{dst}.value.bias"), vec![d], b.data[2 * d..].to_vec()));
        Ok(())
    };
    for i in 0..n_audio_layer {
        let (p, q) = (format!("encoder/layer_{i}"), format!("encoder.blocks.{i}"));
        ln(&mut t, &format!("{q}.attn_ln"), &format!("{p}/self_attention/layer_norm"))?;
        qkv(&mut t, &format!("{q}.attn"), &format!("{p}/self_attention/linear_0"))?;
        lin(&mut t, &format!("{q}.attn.out"), &format!("{p}/self_attention/linear_1"))?;
        ln(&mut t, &format!("{q}.mlp_ln"), &format!("{p}/ffn/layer_norm"))?;
        lin(&mut t, &format!("{q}.mlp.0"), &format!("{p}/ffn/linear_0"))?;
        lin(&mut t, &format!("{q}.mlp.2"), &format!("{p}/ffn/linear_1"))?;
    }
    ln(&mut t, "encoder.ln_post", "encoder/layer_norm")?;
    let (s, x) = copy("decoder/position_encodings/encodings")?; t.push(("decoder.positional_embedding".into(), s, x));
    t.push(("decoder.token_embedding.weight".into(), emb.shape.clone(), emb.data.clone()));
    for i in 0..n_text_layer {
        let (p, q) = (format!("decoder/layer_{i}"), format!("decoder.blocks.{i}"));
        ln(&mut t, &format!("{q}.attn_ln"), &format!("{p}/self_attention/layer_norm"))?;
        qkv(&mut t, &format!("{q}.attn"), &format!("{p}/self_attention/linear_0"))?;
        lin(&mut t, &format!("{q}.attn.out"), &format!("{p}/self_attention/linear_1"))?;
        ln(&mut t, &format!("{q}.cross_attn_ln"), &format!("{p}/attention/layer_norm"))?;
        lin(&mut t, &format!("{q}.cross_attn.query"), &format!("{p}/attention/linear_0"))?;
        let (w, b) = (get(&format!("{p}/attention/linear_1/weight"))?, get(&format!("{p}/attention/linear_1/bias"))?);
        if b.data[..d].iter().any(|&x| x != 0.0) {
            bail!("{p}: cross-attention key bias is not zero");
        }
        t.push((format!("{q}.cross_attn.key.weight"), vec![d, d], w.data[..d * d].to_vec()));
        t.push((format!("{q}.cross_attn.value.weight"), vec![d, d], w.data[d * d..].to_vec()));
        t.push((format!("{q}.cross_attn.value.bias"), vec![d], b.data[d..].to_vec()));
        lin(&mut t, &format!("{q}.cross_attn.out"), &format!("{p}/attention/linear_2"))?;
        ln(&mut t, &format!("{q}.mlp_ln"), &format!("{p}/ffn/layer_norm"))?;
        lin(&mut t, &format!("{q}.mlp.0"), &format!("{p}/ffn/linear_0"))?;
        lin(&mut t, &format!("{q}.mlp.2"), &format!("{p}/ffn/linear_1"))?;
    }
    ln(&mut t, "decoder.ln", "decoder/layer_norm")?;

    let f = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut w = BufWriter::new(f);
    let i32le = |w: &mut BufWriter<std::fs::File>, v: i32| w.write_all(&v.to_le_bytes());
    i32le(&mut w, 0x67676d6c)?;
    for v in [n_vocab, n_audio_ctx, d, n_head, n_audio_layer, n_text_ctx, d, n_head, n_text_layer, n_mels, 1] {
        i32le(&mut w, v as i32)?;
    }
    let fb = mel_filterbank(16000.0, 400, n_mels);
    i32le(&mut w, n_mels as i32)?;
    i32le(&mut w, fb[0].len() as i32)?;
    for row in &fb {
        for x in row {
            w.write_all(&x.to_le_bytes())?;
        }
    }
    i32le(&mut w, n_base as i32)?;
    for tok in &vocab[..n_base] {
        let bytes: Vec<u8> = tok.chars().map(|c| dec.get(&c).copied().ok_or_else(|| anyhow!("vocabulary token {tok:?} is not byte-level BPE"))).collect::<Result<_>>()?;
        i32le(&mut w, bytes.len() as i32)?;
        w.write_all(&bytes)?;
    }
    const KEEP_F32: [&str; 4] = ["encoder.conv1.bias", "encoder.conv2.bias", "encoder.positional_embedding", "decoder.positional_embedding"];
    for (name, shape, data) in &t {
        let f32_out = shape.len() < 2 || KEEP_F32.contains(&name.as_str());
        i32le(&mut w, shape.len() as i32)?;
        i32le(&mut w, name.len() as i32)?;
        i32le(&mut w, if f32_out { 0 } else { 1 })?;
        for dim in shape.iter().rev() {
            i32le(&mut w, *dim as i32)?;
        }
        w.write_all(name.as_bytes())?;
        if f32_out {
            for x in data { w.write_all(&x.to_le_bytes())?; }
        } else {
            for x in data { w.write_all(&half::f16::from_f32(*x).to_le_bytes())?; }
        }
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ct2_bytes(tensors: &[(&str, Vec<u32>, u8, Vec<u8>)]) -> Vec<u8> {
        let mut b = Vec::new();
        let s = |b: &mut Vec<u8>, x: &str| { b.extend(((x.len() + 1) as u16).to_le_bytes()); b.extend(x.as_bytes()); b.push(0); };
        b.extend(6u32.to_le_bytes());
        s(&mut b, "WhisperSpec");
        b.extend(1u32.to_le_bytes());
        b.extend((tensors.len() as u32).to_le_bytes());
        for (name, shape, dt, raw) in tensors {
            s(&mut b, name);
            b.push(shape.len() as u8);
            for d in shape { b.extend(d.to_le_bytes()); }
            b.push(*dt);
            b.extend((raw.len() as u32).to_le_bytes());
            b.extend(raw);
        }
        b.extend(0u32.to_le_bytes());
        b
    }

    #[test]
    fn parses_ct2_tensors_of_each_dtype() {
        let f32s: Vec<u8> = [1.5f32, -2.0, 0.25, 4.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        let f16s: Vec<u8> = [0.5f32, -1.0].iter().flat_map(|x| half::f16::from_f32(*x).to_le_bytes()).collect();
        let b = ct2_bytes(&[("a/weight", vec![2, 2], 0, f32s), ("b/bias", vec![2], 4, f16s), ("heads", vec![], 3, 8i32.to_le_bytes().to_vec())]);
        let t = read_ct2(&b).unwrap();
        assert_eq!(t["a/weight"].shape, vec![2, 2]);
        assert_eq!(t["a/weight"].data, vec![1.5, -2.0, 0.25, 4.0]);
        assert_eq!(t["b/bias"].data, vec![0.5, -1.0]);
        assert_eq!(t["heads"].data, vec![8.0]);
        assert!(read_ct2(&b[..b.len() - 10]).is_err(), "truncated file must fail");
    }

    #[test]
    fn mel_filterbank_matches_slaney_semantics() {
        let fb = mel_filterbank(16000.0, 400, 80);
        assert_eq!((fb.len(), fb[0].len()), (80, 201));
        // Each filter is a triangle peaking between its edges; Slaney-normalised filters have
        // area ≈ 1/(bin width): sum × 40 Hz ≈ 1 when the filter spans several bins.
        for row in fb.iter().skip(10) {
            let area: f32 = row.iter().sum::<f32>() * 40.0;
            assert!((area - 1.0).abs() < 0.15, "area {area}");
        }
        // Peaks increase with the filter index (mel scale).
        let peak = |r: &Vec<f32>| r.iter().enumerate().fold((0, 0f32), |a, (i, &v)| if v > a.1 { (i, v) } else { a }).0;
        assert!(fb.windows(2).all(|w| peak(&w[0]) <= peak(&w[1])));
        // Reference values computed once with numpy from librosa's formulas.
        assert!((fb[0][1] - 0.024_862_594).abs() < 1e-6, "{}", fb[0][1]);
        assert!((fb[40].iter().sum::<f32>() * 40.0 - 1.066_594_4).abs() < 1e-4);
    }

    #[test]
    fn byte_decoder_covers_all_bytes() {
        let d = byte_decoder();
        assert_eq!(d.len(), 256);
        assert_eq!(d[&'Ġ'], b' ');
        assert_eq!(d[&'a'], b'a');
    }
}
