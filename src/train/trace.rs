//! A step-by-step record of a run, for checking lab's training against another implementation
//! (`bench/torch_parity.py` replays it in PyTorch): the run's config, its initial and final
//! parameters, and for every optimizer step the token rows it trained on, the prefix lengths, the
//! router biases in use, the learning rate, the loss, the gradient norm and the clipping scale.
//!
//! Files in the trace folder: `config.json` (the run config), `init.safetensors` and
//! `final.safetensors` (every float parameter by dotted path, burn's shapes: a linear layer's
//! weight is `[d_in, d_out]`), `steps.jsonl` (one [`StepRecord`] per line).

use crate::config::RunConfig;
use crate::error::LabResult;
use crate::results::write_atomic;
use crate::train::params::NamedTensor;
use anyhow::Context;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One optimizer step as the trainer took it.
#[derive(Debug, Serialize)]
pub struct StepRecord<'a> {
    /// Steps taken before this one.
    pub step: u64,
    /// Learning rate of the step.
    pub lr: f64,
    /// Mean cross-entropy over the step's loss-bearing tokens (before the update).
    pub loss: f64,
    /// Global L2 norm of the gradient of the objective (before clipping).
    pub grad_norm: f64,
    /// Factor the gradients were scaled by (1, or the clipping threshold over the norm).
    pub clip_scale: f64,
    /// The step's token rows, `seq_len + 1` tokens each (inputs, then the targets shifted by one).
    pub rows: Vec<&'a [i64]>,
    /// Prefix length of each row (0 for a causal decoder).
    pub prefix: &'a [usize],
    /// Router biases in use during the step, per MoE layer (empty for dense models).
    pub biases: &'a [Vec<f32>],
}

/// An open trace folder.
pub struct Trace {
    dir: PathBuf,
    steps: std::fs::File,
}

impl Trace {
    /// Creates `dir` (which must not hold a trace already) and writes the config and the initial
    /// parameters.
    pub fn create(dir: &Path, cfg: &RunConfig, init: &[NamedTensor]) -> LabResult<Trace> {
        ensure_new(dir)?;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating trace folder {}", dir.display()))?;
        let config = serde_json::to_vec_pretty(cfg).context("serialising run config")?;
        write_atomic(&dir.join("config.json"), &config)?;
        write_atomic(&dir.join("init.safetensors"), &safetensors(init)?)?;
        let steps = std::fs::File::create(dir.join("steps.jsonl"))
            .with_context(|| format!("creating {}", dir.join("steps.jsonl").display()))?;
        Ok(Trace {
            dir: dir.to_path_buf(),
            steps,
        })
    }

    /// Appends one step.
    pub fn step(&mut self, record: &StepRecord) -> LabResult<()> {
        let line = serde_json::to_string(record).context("serialising a trace step")?;
        writeln!(self.steps, "{line}").context("writing steps.jsonl")?;
        Ok(())
    }

    /// Writes the parameters after the last step.
    pub fn finish(self, last: &[NamedTensor]) -> LabResult<()> {
        write_atomic(&self.dir.join("final.safetensors"), &safetensors(last)?)?;
        Ok(())
    }
}

/// Refuses a folder that already holds a trace (checked before a run writes anything).
pub fn ensure_new(dir: &Path) -> LabResult<()> {
    if dir.join("steps.jsonl").exists() {
        return Err(anyhow::anyhow!(
            "--trace: {} already holds a trace; choose another folder",
            dir.display()
        )
        .into());
    }
    Ok(())
}

/// Named f32 tensors in the safetensors format: an 8-byte little-endian header length, a JSON
/// header naming each tensor's dtype, shape and byte range, then the raw little-endian data.
pub fn safetensors(tensors: &[NamedTensor]) -> LabResult<Vec<u8>> {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for t in tensors {
        let len = t.values.len() * 4;
        header.insert(
            t.name.clone(),
            serde_json::json!({"dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + len]}),
        );
        offset += len;
    }
    let mut head = serde_json::to_vec(&header).context("serialising safetensors header")?;
    // The data starts on an 8-byte boundary: pad the header with spaces, as the format allows.
    while (8 + head.len()) % 8 != 0 {
        head.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + head.len() + offset);
    out.extend_from_slice(&(head.len() as u64).to_le_bytes());
    out.extend_from_slice(&head);
    for t in tensors {
        for v in &t.values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safetensors_layout_by_hand() {
        let t = [
            NamedTensor {
                name: "a".into(),
                shape: vec![2],
                values: vec![1.0, -2.0],
            },
            NamedTensor {
                name: "b.w".into(),
                shape: vec![1, 1],
                values: vec![0.5],
            },
        ];
        let bytes = safetensors(&t).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!((8 + n) % 8, 0, "data aligned to 8 bytes");
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        assert_eq!(header["a"]["shape"], serde_json::json!([2]));
        assert_eq!(header["a"]["data_offsets"], serde_json::json!([0, 8]));
        assert_eq!(header["b.w"]["data_offsets"], serde_json::json!([8, 12]));
        assert_eq!(header["b.w"]["dtype"], "F32");
        let data = &bytes[8 + n..];
        assert_eq!(data.len(), 12);
        assert_eq!(&data[..4], &1.0f32.to_le_bytes());
        assert_eq!(&data[4..8], &(-2.0f32).to_le_bytes());
        assert_eq!(&data[8..], &0.5f32.to_le_bytes());
    }
}
