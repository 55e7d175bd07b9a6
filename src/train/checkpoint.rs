//! Checkpoints: model and optimizer tensors plus the trainer's state, written as a folder that
//! replaces the previous one only once complete.
//!
//! Tensor files hold a magic line `LABTENSORS1`, a u64 little-endian header length, a JSON header
//! (name, shape, offset per tensor) and the f32 little-endian values.

use crate::error::LabResult;
use crate::results::CurveRow;
use crate::train::params::NamedTensor;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::Path;

const MAGIC: &[u8] = b"LABTENSORS1\n";

#[derive(Serialize, Deserialize)]
struct Entry {
    name: String,
    shape: Vec<usize>,
    offset: usize,
}

/// Writes named tensors to `path`.
pub fn write_tensors(path: &Path, tensors: &[NamedTensor]) -> LabResult<()> {
    let mut offset = 0;
    let entries: Vec<Entry> = tensors
        .iter()
        .map(|t| {
            let e = Entry {
                name: t.name.clone(),
                shape: t.shape.clone(),
                offset,
            };
            offset += t.values.len();
            e
        })
        .collect();
    let header = serde_json::to_vec(&entries).context("tensor header")?;
    let mut f = std::io::BufWriter::new(fs::File::create(path)?);
    f.write_all(MAGIC)?;
    f.write_all(&(header.len() as u64).to_le_bytes())?;
    f.write_all(&header)?;
    for t in tensors {
        for v in &t.values {
            f.write_all(&v.to_le_bytes())?;
        }
    }
    f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// Reads named tensors written by [`write_tensors`].
pub fn read_tensors(path: &Path) -> LabResult<Vec<NamedTensor>> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let bad = || anyhow::anyhow!("{} is not a lab tensor file", path.display());
    if !bytes.starts_with(MAGIC) || bytes.len() < MAGIC.len() + 8 {
        return Err(bad().into());
    }
    let h0 = MAGIC.len() + 8;
    let hlen = u64::from_le_bytes(bytes[MAGIC.len()..h0].try_into().map_err(|_| bad())?) as usize;
    let entries: Vec<Entry> =
        serde_json::from_slice(bytes.get(h0..h0 + hlen).ok_or_else(bad)?).map_err(|_| bad())?;
    let data = &bytes[h0 + hlen..];
    entries
        .into_iter()
        .map(|e| {
            let n: usize = e.shape.iter().product();
            let raw = data.get(4 * e.offset..4 * (e.offset + n)).ok_or_else(bad)?;
            let values = raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Ok(NamedTensor {
                name: e.name,
                shape: e.shape,
                values,
            })
        })
        .collect()
}

/// The trainer's state beside the tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Optimizer steps taken.
    pub step: u64,
    /// Tokens consumed.
    pub tokens: u64,
    /// Loss-bearing target tokens (all tokens for a causal decoder, the non-prefix ones for a
    /// prefix decoder).
    #[serde(default)]
    pub loss_tokens: u64,
    /// MoE selection biases per layer (bias balancing; empty otherwise).
    #[serde(default)]
    pub biases: Vec<Vec<f32>>,
    /// Task-metric rows so far.
    #[serde(default)]
    pub evals: Vec<crate::results::EvalRow>,
    /// Curve rows so far.
    pub curve: Vec<CurveRow>,
    /// Training-loss sum and count since the last evaluation.
    pub loss_sum: f64,
    /// Number of steps in `loss_sum`.
    pub loss_count: u64,
    /// Wall seconds spent before this checkpoint.
    pub wall_seconds: f64,
    /// Config id the checkpoint belongs to.
    pub id: String,
    /// Dynamic loss scaling (f16 runs).
    #[serde(default)]
    pub loss_scale: crate::train::scaling::LossScale,
}

/// A complete checkpoint.
pub struct Checkpoint {
    /// Trainer state.
    pub state: TrainerState,
    /// Model parameters.
    pub model: Vec<NamedTensor>,
    /// Optimizer moments.
    pub optim: Vec<NamedTensor>,
}

/// Writes a checkpoint into `dir` (`dir.new` first, then swapped in).
pub fn save(dir: &Path, ckpt: &Checkpoint) -> LabResult<()> {
    let new = dir.with_extension("new");
    let old = dir.with_extension("old");
    let _ = fs::remove_dir_all(&new);
    fs::create_dir_all(&new)?;
    write_tensors(&new.join("model.bin"), &ckpt.model)?;
    write_tensors(&new.join("optim.bin"), &ckpt.optim)?;
    fs::write(
        new.join("state.json"),
        serde_json::to_vec_pretty(&ckpt.state).context("state")?,
    )?;
    let _ = fs::remove_dir_all(&old);
    if dir.exists() {
        fs::rename(dir, &old)?;
    }
    fs::rename(&new, dir)?;
    let _ = fs::remove_dir_all(&old);
    Ok(())
}

/// Loads the checkpoint in `dir` (or the previous one left by an interrupted swap), if any.
pub fn load(dir: &Path) -> LabResult<Option<Checkpoint>> {
    let old = dir.with_extension("old");
    let src = if dir.join("state.json").exists() {
        dir.to_path_buf()
    } else if old.join("state.json").exists() {
        old
    } else {
        return Ok(None);
    };
    let state: TrainerState = serde_json::from_slice(&fs::read(src.join("state.json"))?)
        .with_context(|| format!("reading {}", src.join("state.json").display()))?;
    let model = read_tensors(&src.join("model.bin"))?;
    let optim = read_tensors(&src.join("optim.bin"))?;
    if model.is_empty() {
        return Err(anyhow::anyhow!("{}: empty model checkpoint", src.display()).into());
    }
    Ok(Some(Checkpoint {
        state,
        model,
        optim,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_round_trip_bit_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.bin");
        let ts = vec![
            NamedTensor {
                name: "a.weight".into(),
                shape: vec![2, 3],
                values: vec![0.1, -2.5, f32::MIN_POSITIVE, 3.0, 4.0, 5.0],
            },
            NamedTensor {
                name: "b".into(),
                shape: vec![1],
                values: vec![7.0],
            },
        ];
        write_tensors(&p, &ts).unwrap();
        assert_eq!(read_tensors(&p).unwrap(), ts);
        fs::write(&p, b"garbage").unwrap();
        assert!(read_tensors(&p).is_err());
    }
}
