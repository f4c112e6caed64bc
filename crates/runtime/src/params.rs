//! Loaded weight tensors (dequantised to f32 once) and the override lookup.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::hooks::Overrides;

/// Index of a tensor in a [`ParamStore`].
pub(crate) type ParamId = usize;

/// Named f32 tensors, each row-major in its PyTorch-order shape.
#[derive(Clone, Debug, Default)]
pub(crate) struct ParamStore {
    names: Vec<String>,
    shapes: Vec<Vec<usize>>,
    data: Vec<Vec<f32>>,
    index: HashMap<String, ParamId>,
}

impl ParamStore {
    /// Loads `name` through `source` and checks its element count against `shape`.
    pub(crate) fn load(
        &mut self,
        name: &str,
        shape: &[usize],
        source: &mut dyn FnMut(&str) -> Result<Vec<f32>>,
    ) -> Result<ParamId> {
        if let Some(&id) = self.index.get(name) {
            return Ok(id);
        }
        let data = source(name)?;
        let expected: usize = shape.iter().product();
        if data.len() != expected {
            return Err(Error::ShapeMismatch {
                tensor: name.to_string(),
                shape: shape.to_vec(),
                expected,
                actual: data.len(),
            });
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "weight tensor",
                count: data.iter().filter(|v| !v.is_finite()).count(),
                first_index: i,
            });
        }
        let id = self.names.len();
        self.names.push(name.to_string());
        self.shapes.push(shape.to_vec());
        self.data.push(data);
        self.index.insert(name.to_string(), id);
        Ok(id)
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    pub(crate) fn by_name(&self, name: &str) -> Option<(&[usize], &[f32])> {
        self.index
            .get(name)
            .map(|&id| (self.shapes[id].as_slice(), self.data[id].as_slice()))
    }

    pub(crate) fn n_params(&self) -> usize {
        self.data.iter().map(Vec::len).sum()
    }

    /// Checks every override: the name must be a loaded tensor and the length must match.
    pub(crate) fn check_overrides(&self, ov: &Overrides) -> Result<()> {
        for (name, values) in ov {
            let Some(&id) = self.index.get(name) else {
                return Err(Error::BadOverride {
                    tensor: name.clone(),
                    reason: "no tensor of this name in the model".into(),
                });
            };
            if values.len() != self.data[id].len() {
                return Err(Error::BadOverride {
                    tensor: name.clone(),
                    reason: format!(
                        "{} values given, the tensor has {} ({:?})",
                        values.len(),
                        self.data[id].len(),
                        self.shapes[id]
                    ),
                });
            }
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(Error::BadOverride {
                    tensor: name.clone(),
                    reason: format!("non-finite value at index {i}"),
                });
            }
        }
        Ok(())
    }

    /// A view that resolves tensors through `ov` first.
    pub(crate) fn view<'a>(&'a self, ov: &'a Overrides) -> Weights<'a> {
        Weights { store: self, ov }
    }
}

/// The weights one run uses: the loaded tensors, with overrides taking precedence.
#[derive(Clone, Copy)]
pub(crate) struct Weights<'a> {
    store: &'a ParamStore,
    ov: &'a Overrides,
}

impl<'a> Weights<'a> {
    pub(crate) fn get(&self, id: ParamId) -> &'a [f32] {
        if !self.ov.is_empty() {
            if let Some(v) = self.ov.get(&self.store.names[id]) {
                return v;
            }
        }
        &self.store.data[id]
    }
}
