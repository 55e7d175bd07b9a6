//! AdamW with decoupled weight decay, applied only to matrices outside the embeddings (unless
//! `decay_all`), global-norm clipping, and a state that checkpoints by parameter path.

use crate::train::params::{tensor_values, NamedTensor, PathStack};
use burn::module::{Module, ModuleMapper, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use std::collections::HashMap;

/// AdamW hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWSettings {
    /// beta1.
    pub beta1: f64,
    /// beta2.
    pub beta2: f64,
    /// epsilon.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Decay norms, biases and embeddings too.
    pub decay_all: bool,
}

impl Default for AdamWSettings {
    /// The run config's defaults: betas (0.9, 0.95), eps 1e-8, weight decay 0.1 on matrices.
    fn default() -> Self {
        AdamWSettings {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
            decay_all: false,
        }
    }
}

/// First and second moments of one parameter, flattened.
struct Moments {
    m: Tensor<1>,
    v: Tensor<1>,
}

/// AdamW state: moments by parameter path and the step count.
pub struct AdamW {
    settings: AdamWSettings,
    /// Steps taken.
    pub step: u64,
    moments: HashMap<String, Moments>,
}

impl AdamW {
    /// A fresh optimizer.
    pub fn new(settings: AdamWSettings) -> Self {
        AdamW {
            settings,
            step: 0,
            moments: HashMap::new(),
        }
    }

    /// Whether the parameter at `path` with rank `rank` is decayed.
    pub fn decays(&self, path: &str, rank: usize) -> bool {
        let table = path.strip_prefix("encoder.").unwrap_or(path);
        let embedding = table.starts_with("tok.") || table.starts_with("pos.");
        self.settings.decay_all || (rank >= 2 && !embedding)
    }

    /// One step: scales gradients by `grad_scale` (clipping), updates moments and parameters.
    pub fn step<M: Module>(
        &mut self,
        lr: f64,
        module: M,
        grads: GradientsParams,
        grad_scale: f64,
    ) -> M {
        self.step += 1;
        let mut mapper = StepMapper {
            opt: self,
            path: PathStack::default(),
            grads,
            lr,
            grad_scale,
        };
        module.map(&mut mapper)
    }

    /// The state as named tensors (`<path>.m`, `<path>.v`), for checkpoints.
    pub fn export(&self) -> Vec<NamedTensor> {
        let mut names: Vec<&String> = self.moments.keys().collect();
        names.sort();
        names
            .into_iter()
            .flat_map(|n| {
                let mo = &self.moments[n];
                [("m", &mo.m), ("v", &mo.v)].map(|(k, t)| NamedTensor {
                    name: format!("{n}.{k}"),
                    shape: t.dims().to_vec(),
                    values: tensor_values(t.clone()),
                })
            })
            .collect()
    }

    /// Restores the state saved by [`AdamW::export`].
    pub fn import(
        &mut self,
        step: u64,
        tensors: &[NamedTensor],
        device: &Device,
    ) -> Result<(), String> {
        let mut m: HashMap<String, Tensor<1>> = HashMap::new();
        let mut v: HashMap<String, Tensor<1>> = HashMap::new();
        for t in tensors {
            let data =
                Tensor::<1>::from_data(TensorData::new(t.values.clone(), [t.values.len()]), device);
            if let Some(p) = t.name.strip_suffix(".m") {
                m.insert(p.to_string(), data);
            } else if let Some(p) = t.name.strip_suffix(".v") {
                v.insert(p.to_string(), data);
            } else {
                return Err(format!("unexpected optimizer tensor {}", t.name));
            }
        }
        self.moments.clear();
        for (name, m) in m {
            let v = v
                .remove(&name)
                .ok_or_else(|| format!("optimizer state lacks {name}.v"))?;
            self.moments.insert(name, Moments { m, v });
        }
        self.step = step;
        Ok(())
    }
}

struct StepMapper<'a> {
    opt: &'a mut AdamW,
    path: PathStack,
    grads: GradientsParams,
    lr: f64,
    grad_scale: f64,
}

impl ModuleMapper for StepMapper<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let name = self.path.name();
        let s = self.opt.settings;
        let require = tensor.is_require_grad();
        let x = tensor.inner();
        let shape = x.dims();
        let n: usize = shape.iter().product();
        let device = x.device();
        let g = grad.reshape([n]);
        let g = if self.grad_scale != 1.0 {
            g.mul_scalar(self.grad_scale)
        } else {
            g
        };
        let prev = self.opt.moments.remove(&name);
        let (m, v) = match prev {
            Some(Moments { m, v }) => (m, v),
            None => (
                Tensor::<1>::zeros([n], &device),
                Tensor::<1>::zeros([n], &device),
            ),
        };
        let m = m.mul_scalar(s.beta1) + g.clone().mul_scalar(1.0 - s.beta1);
        let v = v.mul_scalar(s.beta2) + g.powi_scalar(2).mul_scalar(1.0 - s.beta2);
        let t = self.opt.step as i32;
        let bc1 = 1.0 - s.beta1.powi(t);
        let bc2 = 1.0 - s.beta2.powi(t);
        let update = m
            .clone()
            .div_scalar(bc1)
            .div(v.clone().div_scalar(bc2).sqrt().add_scalar(s.eps));
        let decay = if self.opt.decays(&name, D) {
            s.weight_decay
        } else {
            0.0
        };
        let mut x = x.reshape([n]);
        if decay > 0.0 {
            x = x.mul_scalar(1.0 - self.lr * decay);
        }
        let x = (x - update.mul_scalar(self.lr)).reshape(shape);
        self.opt.moments.insert(name, Moments { m, v });
        let mut p = Tensor::from_inner(x);
        if require {
            p = p.require_grad();
        }
        Param::from_mapped_value(id, p, mapper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_of_either_stack_are_not_decayed() {
        let opt = AdamW::new(AdamWSettings::default());
        for table in [
            "tok.weight",
            "pos.weight",
            "encoder.tok.weight",
            "encoder.pos.weight",
        ] {
            assert!(!opt.decays(table, 2), "{table}");
        }
        for matrix in [
            "blocks.0.attn.qkv.weight",
            "encoder.blocks.1.cross.kv.weight",
            "head.weight",
        ] {
            assert!(opt.decays(matrix, 2), "{matrix}");
        }
        assert!(!opt.decays("blocks.0.norm1.layer.gamma", 1));
    }
}
