//! Import of CTranslate2 (faster-whisper) Whisper models into whisper.cpp's ggml format.
//!
//! Clinics that already run faster-whisper can bring those models; and it is how the appliance gets
//! whisper weights at all, since the registries carry only CTranslate2 copies. The layout written
//! follows whisper.cpp's own `convert-pt-to-ggml.py`, so the result loads in any whisper.cpp.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::mel;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("{0} is not a CTranslate2 Whisper model: {1}")]
    Format(String, String),
    #[error(
        "variable {0} has data type {1}; only float16/float32/bfloat16 models convert losslessly (int8-quantized CTranslate2 models do not)"
    )]
    Quantized(String, &'static str),
    #[error("the model has no variable {0}")]
    Missing(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    Bf16,
}

impl DType {
    fn from_code(code: u8) -> Option<DType> {
        Some(match code {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::Bf16,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::Bf16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }

    fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::F16 => "float16",
            DType::Bf16 => "bfloat16",
        }
    }
}

struct Variable {
    dims: Vec<usize>,
    dtype: DType,
    data: Vec<u8>,
}

/// A parsed CTranslate2 `model.bin` (binary format version 6).
struct Ct2Model {
    vars: HashMap<String, Variable>,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.bytes.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u16()? as usize;
        let raw = self.take(n)?;
        Some(String::from_utf8_lossy(raw.strip_suffix(&[0]).unwrap_or(raw)).into_owned())
    }
}

impl Ct2Model {
    fn parse(bytes: &[u8], path: &str) -> Result<Ct2Model, ImportError> {
        let bad = |why: &str| ImportError::Format(path.into(), why.into());
        let truncated = || bad("the file ends early");
        let mut c = Cursor { bytes, pos: 0 };
        let version = c.u32().ok_or_else(truncated)?;
        if version != 6 {
            return Err(bad(&format!("binary version {version}, expected 6")));
        }
        let spec = c.string().ok_or_else(truncated)?;
        if spec != "WhisperSpec" {
            return Err(bad(&format!("spec {spec:?}, expected \"WhisperSpec\"")));
        }
        let _revision = c.u32().ok_or_else(truncated)?;
        let n = c.u32().ok_or_else(truncated)?;
        let mut vars = HashMap::new();
        for _ in 0..n {
            let name = c.string().ok_or_else(truncated)?;
            let rank = c.u8().ok_or_else(truncated)?;
            let dims = (0..rank)
                .map(|_| c.u32().map(|d| d as usize))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(truncated)?;
            let code = c.u8().ok_or_else(truncated)?;
            let dtype = DType::from_code(code).ok_or_else(|| bad(&format!("{name} has unknown data type {code}")))?;
            let nbytes = c.u32().ok_or_else(truncated)? as usize;
            // Shapes drive every slice taken later: a variable must hold exactly what its shape
            // says, with no empty dimension.
            let elements = dims
                .iter()
                .try_fold(1usize, |n, &d| if d == 0 { None } else { n.checked_mul(d) });
            if elements.and_then(|n| n.checked_mul(dtype.size())) != Some(nbytes) {
                return Err(bad(&format!(
                    "{name} has {nbytes} bytes for shape {dims:?} of {}",
                    dtype.name()
                )));
            }
            let data = c.take(nbytes).ok_or_else(truncated)?.to_vec();
            vars.insert(name, Variable { dims, dtype, data });
        }
        let n_aliases = c.u32().ok_or_else(truncated)?;
        for _ in 0..n_aliases {
            let alias = c.string().ok_or_else(truncated)?;
            let target = c.string().ok_or_else(truncated)?;
            if let Some(v) = vars.get(&target) {
                let copy = Variable {
                    dims: v.dims.clone(),
                    dtype: v.dtype,
                    data: v.data.clone(),
                };
                vars.insert(alias, copy);
            }
        }
        Ok(Ct2Model { vars })
    }

    fn get(&self, name: &str) -> Result<&Variable, ImportError> {
        self.vars.get(name).ok_or_else(|| ImportError::Missing(name.into()))
    }

    /// Dimension `i` of a variable's shape.
    fn dim(&self, name: &str, i: usize) -> Result<usize, ImportError> {
        self.get(name)?
            .dims
            .get(i)
            .copied()
            .ok_or_else(|| ImportError::Missing(format!("{name} (a tensor of rank {})", i + 1)))
    }

    fn scalar(&self, name: &str) -> Result<usize, ImportError> {
        let v = self.get(name)?;
        let value = match v.dtype {
            DType::I8 => v.data.first().map(|&b| b as i8 as i64),
            DType::I16 => v.data.get(..2).map(|b| i16::from_le_bytes([b[0], b[1]]) as i64),
            DType::I32 => v
                .data
                .get(..4)
                .map(|b| i32::from_le_bytes(b.try_into().unwrap()) as i64),
            _ => None,
        };
        value
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| ImportError::Missing(format!("{name} (an integer)")))
    }

    fn count_layers(&self, prefix: &str) -> usize {
        (0..)
            .take_while(|i| self.vars.keys().any(|k| k.starts_with(&format!("{prefix}/layer_{i}/"))))
            .count()
    }

    /// The variable as f32 values (converting from f16/bf16).
    fn floats(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), ImportError> {
        let v = self.get(name)?;
        let values = match v.dtype {
            DType::F32 => v
                .data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            DType::F16 => v
                .data
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            DType::Bf16 => v
                .data
                .chunks_exact(2)
                .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
                .collect(),
            other => return Err(ImportError::Quantized(name.into(), other.name())),
        };
        Ok((v.dims.clone(), values))
    }
}

/// A tensor ready to write: PyTorch-order shape and f32 values.
struct Tensor {
    name: String,
    shape: Vec<usize>,
    values: Vec<f32>,
}

impl Tensor {
    /// Rows `[from, to)` of a 2-D (or 1-D) variable: splits CTranslate2's fused projections.
    fn rows(
        name: String,
        (dims, values): &(Vec<usize>, Vec<f32>),
        from: usize,
        to: usize,
    ) -> Result<Tensor, ImportError> {
        let row: usize = dims.iter().skip(1).product();
        let range = from.checked_mul(row).zip(to.checked_mul(row));
        let Some(values) = range.and_then(|(a, b)| values.get(a..b)).filter(|_| !dims.is_empty()) else {
            return Err(ImportError::Format(
                name,
                format!("a fused projection of shape {dims:?} has no rows {from}..{to}"),
            ));
        };
        let mut shape = dims.clone();
        shape[0] = to - from;
        Ok(Tensor {
            name,
            shape,
            values: values.to_vec(),
        })
    }

    fn whole(name: String, (dims, values): (Vec<usize>, Vec<f32>)) -> Tensor {
        Tensor {
            name,
            shape: dims,
            values,
        }
    }
}

struct Hparams {
    n_vocab: usize,
    n_audio_ctx: usize,
    n_audio_state: usize,
    n_audio_head: usize,
    n_audio_layer: usize,
    n_text_ctx: usize,
    n_text_state: usize,
    n_text_head: usize,
    n_text_layer: usize,
    n_mels: usize,
}

/// Converts `DIR/model.bin` + `DIR/vocabulary.{txt,json}` into a whisper.cpp ggml file at `out`.
pub fn import_ct2(dir: &Path, out: &Path) -> Result<(), ImportError> {
    let model_path = dir.join("model.bin");
    let bytes = std::fs::read(&model_path).map_err(|source| ImportError::Read {
        path: model_path.display().to_string(),
        source,
    })?;
    let vocab = read_vocabulary(dir)?;
    convert(&bytes, &model_path.display().to_string(), &vocab, out)
}

fn convert(bytes: &[u8], path: &str, vocab: &[String], out: &Path) -> Result<(), ImportError> {
    let m = Ct2Model::parse(bytes, path)?;
    let (enc_pos, dec_pos) = (
        "encoder/position_encodings/encodings",
        "decoder/position_encodings/encodings",
    );
    let h = Hparams {
        n_vocab: m.dim("decoder/embeddings/weight", 0)?,
        n_audio_ctx: m.dim(enc_pos, 0)?,
        n_audio_state: m.dim(enc_pos, 1)?,
        n_audio_head: m.scalar("encoder/num_heads")?,
        n_audio_layer: m.count_layers("encoder"),
        n_text_ctx: m.dim(dec_pos, 0)?,
        n_text_state: m.dim(dec_pos, 1)?,
        n_text_head: m.scalar("decoder/num_heads")?,
        n_text_layer: m.count_layers("decoder"),
        n_mels: m.dim("encoder/conv1/weight", 1)?,
    };
    // Whisper models have 80 or 128 mel bands; the filterbank written out is n_mels × 201 floats.
    if !(1..=256).contains(&h.n_mels) {
        return Err(ImportError::Format(
            path.into(),
            format!("{} mel bands (whisper models have 80 or 128)", h.n_mels),
        ));
    }
    let tensors = tensors_in_openai_order(&m, &h)?;

    let write_err = |source| ImportError::Write {
        path: out.display().to_string(),
        source,
    };
    let file = std::fs::File::create(out).map_err(write_err)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    write_ggml(&mut w, &h, vocab, &tensors).map_err(write_err)?;
    let file = w.into_inner().map_err(|e| write_err(e.into_error()))?;
    file.sync_all().map_err(write_err)?;
    Ok(())
}

fn tensors_in_openai_order(m: &Ct2Model, h: &Hparams) -> Result<Vec<Tensor>, ImportError> {
    let mut t = Vec::new();
    let whole = |t: &mut Vec<Tensor>, to: &str, from: &str| -> Result<(), ImportError> {
        t.push(Tensor::whole(to.into(), m.floats(from)?));
        Ok(())
    };
    let ln = |t: &mut Vec<Tensor>, to: &str, from: &str| -> Result<(), ImportError> {
        t.push(Tensor::whole(
            format!("{to}.weight"),
            m.floats(&format!("{from}/gamma"))?,
        ));
        t.push(Tensor::whole(format!("{to}.bias"), m.floats(&format!("{from}/beta"))?));
        Ok(())
    };
    let linear = |t: &mut Vec<Tensor>, to: &str, from: &str| -> Result<(), ImportError> {
        t.push(Tensor::whole(
            format!("{to}.weight"),
            m.floats(&format!("{from}/weight"))?,
        ));
        t.push(Tensor::whole(format!("{to}.bias"), m.floats(&format!("{from}/bias"))?));
        Ok(())
    };

    whole(
        &mut t,
        "encoder.positional_embedding",
        "encoder/position_encodings/encodings",
    )?;
    for c in ["conv1", "conv2"] {
        linear(&mut t, &format!("encoder.{c}"), &format!("encoder/{c}"))?;
    }
    let d = h.n_audio_state;
    for i in 0..h.n_audio_layer {
        let (to, from) = (format!("encoder.blocks.{i}"), format!("encoder/layer_{i}"));
        self_attention(m, &mut t, &to, &from, d)?;
        ln(
            &mut t,
            &format!("{to}.attn_ln"),
            &format!("{from}/self_attention/layer_norm"),
        )?;
        linear(&mut t, &format!("{to}.mlp.0"), &format!("{from}/ffn/linear_0"))?;
        linear(&mut t, &format!("{to}.mlp.2"), &format!("{from}/ffn/linear_1"))?;
        ln(&mut t, &format!("{to}.mlp_ln"), &format!("{from}/ffn/layer_norm"))?;
    }
    ln(&mut t, "encoder.ln_post", "encoder/layer_norm")?;

    whole(
        &mut t,
        "decoder.positional_embedding",
        "decoder/position_encodings/encodings",
    )?;
    whole(&mut t, "decoder.token_embedding.weight", "decoder/embeddings/weight")?;
    let d = h.n_text_state;
    for i in 0..h.n_text_layer {
        let (to, from) = (format!("decoder.blocks.{i}"), format!("decoder/layer_{i}"));
        self_attention(m, &mut t, &to, &from, d)?;
        ln(
            &mut t,
            &format!("{to}.attn_ln"),
            &format!("{from}/self_attention/layer_norm"),
        )?;
        // Cross-attention: linear_0 is the query, linear_1 the fused key/value, linear_2 the output.
        linear(
            &mut t,
            &format!("{to}.cross_attn.query"),
            &format!("{from}/attention/linear_0"),
        )?;
        let kv_w = m.floats(&format!("{from}/attention/linear_1/weight"))?;
        let kv_b = m.floats(&format!("{from}/attention/linear_1/bias"))?;
        t.push(Tensor::rows(format!("{to}.cross_attn.key.weight"), &kv_w, 0, d)?);
        t.push(Tensor::rows(format!("{to}.cross_attn.value.weight"), &kv_w, d, 2 * d)?);
        t.push(Tensor::rows(format!("{to}.cross_attn.value.bias"), &kv_b, d, 2 * d)?);
        linear(
            &mut t,
            &format!("{to}.cross_attn.out"),
            &format!("{from}/attention/linear_2"),
        )?;
        ln(
            &mut t,
            &format!("{to}.cross_attn_ln"),
            &format!("{from}/attention/layer_norm"),
        )?;
        linear(&mut t, &format!("{to}.mlp.0"), &format!("{from}/ffn/linear_0"))?;
        linear(&mut t, &format!("{to}.mlp.2"), &format!("{from}/ffn/linear_1"))?;
        ln(&mut t, &format!("{to}.mlp_ln"), &format!("{from}/ffn/layer_norm"))?;
    }
    ln(&mut t, "decoder.ln", "decoder/layer_norm")?;
    Ok(t)
}

/// Splits the fused QKV projection: Whisper's key projection has no bias.
fn self_attention(m: &Ct2Model, t: &mut Vec<Tensor>, to: &str, from: &str, d: usize) -> Result<(), ImportError> {
    let w = m.floats(&format!("{from}/self_attention/linear_0/weight"))?;
    let b = m.floats(&format!("{from}/self_attention/linear_0/bias"))?;
    t.push(Tensor::rows(format!("{to}.attn.query.weight"), &w, 0, d)?);
    t.push(Tensor::rows(format!("{to}.attn.query.bias"), &b, 0, d)?);
    t.push(Tensor::rows(format!("{to}.attn.key.weight"), &w, d, 2 * d)?);
    t.push(Tensor::rows(format!("{to}.attn.value.weight"), &w, 2 * d, 3 * d)?);
    t.push(Tensor::rows(format!("{to}.attn.value.bias"), &b, 2 * d, 3 * d)?);
    t.push(Tensor::whole(
        format!("{to}.attn.out.weight"),
        m.floats(&format!("{from}/self_attention/linear_1/weight"))?,
    ));
    t.push(Tensor::whole(
        format!("{to}.attn.out.bias"),
        m.floats(&format!("{from}/self_attention/linear_1/bias"))?,
    ));
    Ok(())
}

fn write_ggml(w: &mut impl Write, h: &Hparams, vocab: &[String], tensors: &[Tensor]) -> std::io::Result<()> {
    let i32le = |w: &mut dyn Write, v: usize| w.write_all(&(v as i32).to_le_bytes());
    w.write_all(&0x6767_6d6c_i32.to_le_bytes())?;
    for v in [
        h.n_vocab,
        h.n_audio_ctx,
        h.n_audio_state,
        h.n_audio_head,
        h.n_audio_layer,
        h.n_text_ctx,
        h.n_text_state,
        h.n_text_head,
        h.n_text_layer,
        h.n_mels,
        1, // ftype 1: f16 weights
    ] {
        i32le(w, v)?;
    }
    let filters = mel::mel_filters(h.n_mels);
    i32le(w, h.n_mels)?;
    i32le(w, mel::N_FFT / 2 + 1)?;
    for f in filters {
        w.write_all(&f.to_le_bytes())?;
    }
    // Only the byte-level BPE tokens: whisper.cpp appends the special tokens itself. OpenAI's
    // English tokenizer file (gpt2.tiktoken) also lists <|endoftext|>; the multilingual one does
    // not, and whisper.cpp's converter writes exactly what those files hold.
    let multilingual = h.n_vocab >= 51865;
    let eot = vocab.iter().position(|t| t == "<|endoftext|>").unwrap_or(vocab.len());
    let base_len = if multilingual { eot } else { (eot + 1).min(vocab.len()) };
    let base: Vec<Vec<u8>> = vocab[..base_len].iter().map(|t| bpe_token_bytes(t)).collect();
    i32le(w, base.len())?;
    for token in &base {
        i32le(w, token.len())?;
        w.write_all(token)?;
    }
    for t in tensors {
        let mut shape = t.shape.clone();
        if t.name == "encoder.conv1.bias" || t.name == "encoder.conv2.bias" {
            shape.push(1); // whisper.cpp expects conv biases as [n, 1]
        }
        let keep_f32 = shape.len() < 2
            || t.name.ends_with(".conv1.bias")
            || t.name.ends_with(".conv2.bias")
            || t.name.ends_with("positional_embedding");
        i32le(w, shape.len())?;
        i32le(w, t.name.len())?;
        i32le(w, if keep_f32 { 0 } else { 1 })?;
        for &d in shape.iter().rev() {
            i32le(w, d)?;
        }
        w.write_all(t.name.as_bytes())?;
        if keep_f32 {
            for v in &t.values {
                w.write_all(&v.to_le_bytes())?;
            }
        } else {
            for v in &t.values {
                w.write_all(&f32_to_f16(*v).to_le_bytes())?;
            }
        }
    }
    w.flush()
}

fn read_vocabulary(dir: &Path) -> Result<Vec<String>, ImportError> {
    let txt = dir.join("vocabulary.txt");
    if let Ok(text) = std::fs::read_to_string(&txt) {
        return Ok(text.lines().map(str::to_string).collect());
    }
    let json = dir.join("vocabulary.json");
    let text = std::fs::read_to_string(&json).map_err(|source| ImportError::Read {
        path: txt.display().to_string(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| ImportError::Format(json.display().to_string(), e.to_string()))
}

/// GPT-2's byte-level BPE writes each byte as a printable character; this maps them back.
fn bpe_token_bytes(token: &str) -> Vec<u8> {
    let table = byte_decoder();
    token.chars().map(|c| table.get(&c).copied().unwrap_or(b'?')).collect()
}

fn byte_decoder() -> &'static HashMap<char, u8> {
    static TABLE: std::sync::OnceLock<HashMap<char, u8>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let printable = |b: u32| (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
        let mut next = 256u32;
        (0u32..256)
            .map(|b| {
                let c = if printable(b) {
                    b
                } else {
                    next += 1;
                    next - 1
                };
                (char::from_u32(c).unwrap(), b as u8)
            })
            .collect()
    })
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: normalise.
            let shift = f.leading_zeros() - 21;
            sign | ((127 - 15 + 1 - shift) << 23) | ((f << shift) & 0x3ff) << 13
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

/// Round-to-nearest-even, as numpy's `astype(float16)`.
fn f32_to_f16(v: f32) -> u16 {
    let bits = v.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let man = bits & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        let m = man | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let rounded = m + half - 1 + ((m >> shift) & 1);
        return sign | (rounded >> shift) as u16;
    }
    let rounded = man + 0xfff + ((man >> 13) & 1);
    if rounded & 0x80_0000 != 0 {
        // Mantissa overflowed into the exponent.
        let e = e + 1;
        if e >= 0x1f {
            return sign | 0x7c00;
        }
        return sign | ((e as u16) << 10);
    }
    sign | ((e as u16) << 10) | (rounded >> 13) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats_round_trip() {
        for h in [0u16, 0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x3555, 0x8001] {
            assert_eq!(f32_to_f16(f16_to_f32(h)), h, "{h:#06x} -> {}", f16_to_f32(h));
        }
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f32_to_f16(1.0 + 1.0 / 4096.0), 0x3c00, "ties to even");
        assert_eq!(f32_to_f16(65520.0), 0x7c00, "overflow to infinity");
    }

    #[test]
    fn byte_level_tokens_map_back_to_bytes() {
        assert_eq!(bpe_token_bytes("Ġthe"), b" the");
        assert_eq!(bpe_token_bytes("Ċ"), b"\n");
        assert_eq!(bpe_token_bytes("!"), b"!");
    }

    #[test]
    fn non_ct2_input_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("model.bin"), b"GGUF not a ct2 file").unwrap();
        std::fs::write(dir.path().join("vocabulary.txt"), "a\n").unwrap();
        let err = import_ct2(dir.path(), &dir.path().join("out.bin")).unwrap_err();
        assert!(err.to_string().contains("not a CTranslate2 Whisper model"), "{err}");
    }
}
