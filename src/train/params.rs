//! Walking a module's parameters by name: export and import values, gradient norms and accumulation.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use std::collections::HashMap;

/// A parameter's values as plain data, by dotted path.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// Dotted path in the module (e.g. `blocks.0.attn.qkv.weight`).
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values (f32).
    pub values: Vec<f32>,
}

/// Tracks the dotted path while a visitor or mapper walks a module.
#[derive(Default)]
pub struct PathStack(Vec<String>);

impl PathStack {
    /// Enters a field or index.
    pub fn push(&mut self, name: &str) {
        self.0.push(name.to_string());
    }
    /// Leaves it.
    pub fn pop(&mut self) {
        self.0.pop();
    }
    /// The current dotted path.
    pub fn name(&self) -> String {
        self.0.join(".")
    }
}

/// Reads a tensor's values as f32.
pub fn tensor_values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().expect("f32 data")
}

struct Export {
    path: PathStack,
    out: Vec<NamedTensor>,
}

impl ModuleVisitor for Export {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        self.out.push(NamedTensor {
            name: self.path.name(),
            shape: t.dims().to_vec(),
            values: tensor_values(t),
        });
    }
}

/// Every float parameter of `module` with its path, in visiting order.
pub fn export<M: Module>(module: &M) -> Vec<NamedTensor> {
    let mut v = Export {
        path: PathStack::default(),
        out: Vec::new(),
    };
    module.visit(&mut v);
    v.out
}

struct Import<'a> {
    path: PathStack,
    values: &'a HashMap<String, NamedTensor>,
    missing: Vec<String>,
}

impl ModuleMapper for Import<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = self.path.name();
        let (id, tensor, mapper) = param.consume();
        match self.values.get(&name) {
            Some(nt) if nt.shape == tensor.dims().to_vec() => {
                let require = tensor.is_require_grad();
                let device = tensor.device();
                let shape: [usize; D] = nt.shape.clone().try_into().expect("rank checked");
                let mut t =
                    Tensor::<D>::from_data(TensorData::new(nt.values.clone(), shape), &device);
                if require {
                    t = t.require_grad();
                }
                Param::from_mapped_value(id, t, mapper)
            }
            _ => {
                self.missing.push(name);
                Param::from_mapped_value(id, tensor, mapper)
            }
        }
    }
}

/// Replaces every parameter of `module` by the value of the same path; errors list the paths missing
/// or of the wrong shape.
pub fn import<M: Module>(module: M, values: &[NamedTensor]) -> Result<M, String> {
    let map: HashMap<String, NamedTensor> =
        values.iter().map(|v| (v.name.clone(), v.clone())).collect();
    let mut m = Import {
        path: PathStack::default(),
        values: &map,
        missing: Vec::new(),
    };
    let module = module.map(&mut m);
    if m.missing.is_empty() {
        Ok(module)
    } else {
        Err(format!(
            "checkpoint lacks or mis-shapes parameters: {}",
            m.missing.join(", ")
        ))
    }
}

struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let s = g.powi_scalar(2).sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
}

/// Global L2 norm of the gradients of `module`'s parameters (one device sync).
pub fn grad_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    let mut v = SquaredNorm { grads, total: None };
    module.visit(&mut v);
    v.total
        .map(|t| {
            let s: f32 = t.into_scalar();
            (s as f64).sqrt()
        })
        .unwrap_or(0.0)
}

struct Accumulate<'a> {
    acc: &'a mut GradientsParams,
    new: &'a mut GradientsParams,
}

impl ModuleVisitor for Accumulate<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.new.remove::<D>(param.id) {
            let sum = match self.acc.remove::<D>(param.id) {
                Some(a) => a + g,
                None => g,
            };
            self.acc.register::<D>(param.id, sum);
        }
    }
}

/// Adds the gradients in `new` into `acc` (gradient accumulation over micro-batches).
pub fn accumulate<M: Module>(module: &M, acc: &mut GradientsParams, mut new: GradientsParams) {
    module.visit(&mut Accumulate { acc, new: &mut new });
}
