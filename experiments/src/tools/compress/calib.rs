//! Calibration statistics: the Gram matrix `XᵀX` of the inputs of every linear map of a llama
//! decoder, from one hooked forward pass per window of calibration tokens.
//!
//! The runtime's hooks record the residual stream, the attention probabilities and the MLP
//! post-activations; the inputs of the projections are rebuilt from them:
//!
//! ```text
//! attn_in_l = rms_norm(r_{l−1}) ⊙ g_attn          (input of Q, K, V)
//! o_in_l    = P_h · V_{h / group}, heads side by side   (input of the attention output)
//! mid_l     = r_{l−1} + o_in_l W_oᵀ
//! ffn_in_l  = rms_norm(mid_l) ⊙ g_ffn              (input of gate and up)
//! down_in_l = silu(gate) ⊙ up                      (captured; input of down)
//! head_in   = rms_norm(r_L) ⊙ g_out                (input of the output head = tied embedding)
//! ```
//!
//! and checked: `mid_l + down_in_l W_downᵀ` must equal the captured `r_l` (the largest relative
//! difference over blocks is reported; above [`MAX_REBUILD_ERROR`] the capture is rejected).

use std::collections::HashMap;

use anyhow::{bail, Context as _, Result};
use claimlab_runtime::{Capture, Hooks, LlamaModel};
use claimlab_weights::{Model, Param, Role};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};

/// Largest accepted relative difference between the rebuilt and the captured residual stream.
pub const MAX_REBUILD_ERROR: f64 = 1e-3;

/// Where a tensor's input comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Site {
    /// Normed residual entering attention of block l.
    AttnIn(usize),
    /// Concatenated attention heads of block l.
    OIn(usize),
    /// Normed residual entering the MLP of block l.
    FfnIn(usize),
    /// Input of the down projection of block l.
    DownIn(usize),
    /// Final normed hidden state (input of the output head).
    HeadIn,
}

/// Which site feeds a weight matrix of this role (`None` for tensors that are not linear maps).
#[must_use]
pub fn site_of(role: Role, layer: Option<usize>) -> Option<Site> {
    match (role, layer) {
        (Role::Query | Role::Key | Role::Value, Some(l)) => Some(Site::AttnIn(l)),
        (Role::AttnOutput, Some(l)) => Some(Site::OIn(l)),
        (Role::MlpGate | Role::MlpUp, Some(l)) => Some(Site::FfnIn(l)),
        (Role::MlpDown, Some(l)) => Some(Site::DownIn(l)),
        (Role::TokenEmbedding | Role::LmHead, None) => Some(Site::HeadIn),
        _ => None,
    }
}

/// Gram matrices of the inputs, summed over all calibration tokens: the diagonal of every
/// site's, the full matrix of the sites a run asked to keep ([`Calib::keeping`]).
#[derive(Debug)]
pub struct Calib {
    /// Number of calibration tokens.
    pub n_tokens: usize,
    /// `XᵀX` of the kept sites (f32 storage; each window's product is added in f32).
    pub gram: HashMap<Site, Mat<f32>>,
    /// The diagonal of `XᵀX` of every site (the same f32 values as the full matrix's).
    pub gram_diag: HashMap<Site, Vec<f32>>,
    /// Largest relative difference of the rebuilt residual stream (see the module doc).
    pub rebuild_error: f64,
}

/// Which sites' full Gram matrices a calibration keeps (the diagonals are always kept).
pub type Keep<'a> = &'a (dyn Fn(Site) -> bool + Sync);

/// Keeps every site's full Gram matrix.
pub const KEEP_ALL: Keep<'static> = &|_| true;

impl Calib {
    /// A calibration from full Gram matrices: every diagonal, and the full matrices of the sites
    /// `keep` selects (the others are dropped).
    #[must_use]
    pub fn keeping(
        n_tokens: usize,
        gram: HashMap<Site, Mat<f32>>,
        keep: Keep<'_>,
        rebuild_error: f64,
    ) -> Calib {
        let mut c = Calib {
            n_tokens,
            gram: HashMap::new(),
            gram_diag: HashMap::new(),
            rebuild_error,
        };
        c.absorb(gram, keep);
        c
    }

    /// Adds finished Gram matrices (their diagonals, and the full matrices `keep` selects).
    pub fn absorb(&mut self, gram: HashMap<Site, Mat<f32>>, keep: Keep<'_>) {
        for (s, g) in gram {
            self.gram_diag
                .insert(s, (0..g.nrows()).map(|j| g[(j, j)]).collect());
            if keep(s) {
                self.gram.insert(s, g);
            }
        }
    }

    /// `XᵀX / n` of a site as f64.
    ///
    /// # Errors
    /// When the site has no statistics or only its diagonal was kept.
    pub fn hessian(&self, site: Site) -> Result<Mat<f64>> {
        let g = self.gram.get(&site).with_context(|| {
            if self.gram_diag.contains_key(&site) {
                format!("the full calibration Gram of {site:?} was not kept (only its diagonal)")
            } else {
                format!("no calibration statistics for {site:?}")
            }
        })?;
        #[allow(clippy::cast_precision_loss)]
        let inv = 1.0 / self.n_tokens as f64;
        Ok(Mat::from_fn(g.nrows(), g.ncols(), |i, j| {
            f64::from(g[(i, j)]) * inv
        }))
    }

    /// The diagonal of `XᵀX / n` of a site (mean squared input per column).
    ///
    /// # Errors
    /// When the site has no statistics.
    pub fn diag(&self, site: Site) -> Result<Vec<f64>> {
        let g = self
            .gram_diag
            .get(&site)
            .with_context(|| format!("no calibration statistics for {site:?}"))?;
        #[allow(clippy::cast_precision_loss)]
        let inv = 1.0 / self.n_tokens as f64;
        Ok(g.iter().map(|&v| f64::from(v) * inv).collect())
    }
}

fn rms_norm(x: &[f32], g: &[f32], eps: f64) -> Vec<f32> {
    let d = g.len();
    let mut y = vec![0f32; x.len()];
    for (xr, yr) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
        #[allow(clippy::cast_precision_loss)]
        let ms = xr.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / d as f64;
        #[allow(clippy::cast_possible_truncation)]
        let inv = (1.0 / (ms + eps).sqrt()) as f32;
        for ((o, &v), &s) in yr.iter_mut().zip(xr).zip(g) {
            *o = v * inv * s;
        }
    }
    y
}

/// `x · wᵀ` for row-major `x` `[n, k]` and `w` `[m, k]`.
fn matmul_nt(x: &[f32], w: &[f32], n: usize, k: usize, m: usize) -> Vec<f32> {
    let mut y = vec![0f32; n * m];
    matmul(
        MatMut::from_row_major_slice_mut(&mut y, n, m),
        Accum::Replace,
        MatRef::from_row_major_slice(x, n, k),
        MatRef::from_row_major_slice(w, m, k).transpose(),
        1.0f32,
        Par::rayon(0),
    );
    y
}

pub(crate) fn add_gram(
    gram: &mut HashMap<Site, Mat<f32>>,
    site: Site,
    x: &[f32],
    n: usize,
    d: usize,
) {
    let g = gram.entry(site).or_insert_with(|| Mat::zeros(d, d));
    let xm = MatRef::from_row_major_slice(x, n, d);
    matmul(
        g.as_mut(),
        Accum::Add,
        xm.transpose(),
        xm,
        1.0f32,
        Par::rayon(0),
    );
}

fn rel_diff(a: &[f32], b: &[f32]) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        num += (f64::from(x) - f64::from(y)).powi(2);
        den += f64::from(y).powi(2);
    }
    (num / den.max(f64::MIN_POSITIVE)).sqrt()
}

/// Names of the weight matrices of block `l` by role (from the file's tensor roles).
pub(crate) fn block_names(model: &Model) -> HashMap<(Role, Option<usize>), String> {
    model
        .tensors()
        .iter()
        .filter(|t| t.param == Param::Weight)
        .map(|t| ((t.role, t.layer), t.name.clone()))
        .collect()
}

/// Gram matrices of every projection input over `tokens`, in windows of `window` tokens.
///
/// # Errors
/// Runtime errors, a tensor the runtime lacks, or a rebuilt residual stream off by more than
/// [`MAX_REBUILD_ERROR`] (the rebuild does not match this model's forward pass).
pub fn calibrate(
    file: &Model,
    model: &LlamaModel,
    tokens: &[u32],
    window: usize,
    mut progress: impl FnMut(),
) -> Result<Calib> {
    if tokens.is_empty() || window == 0 {
        bail!("no calibration tokens");
    }
    let c = model.config().clone();
    let (d, hd, ff) = (c.d_model, c.head_dim, c.d_ff);
    let (qd, kd) = (c.n_heads * hd, c.n_kv_heads * hd);
    let group = c.n_heads / c.n_kv_heads.max(1);
    let names = block_names(file);
    let param = |role: Role, layer: Option<usize>| -> Result<&[f32]> {
        let name = names
            .get(&(role, layer))
            .with_context(|| format!("no {role:?} weight for layer {layer:?}"))?;
        model
            .param(name)
            .map(|p| p.1)
            .with_context(|| format!("runtime has no tensor {name}"))
    };
    let mut gram = HashMap::new();
    let mut worst = 0.0f64;
    let hooks = Hooks {
        capture: Capture {
            attention: true,
            mlp_pre: false,
            mlp_post: true,
            residual: true,
            layers: None,
        },
        overrides: HashMap::new(),
    };
    for win in tokens.chunks(window) {
        let n = win.len();
        let out = model.forward(win, &hooks)?;
        let cap = &out.captures;
        let mut prev: Vec<f32> = cap
            .embeddings
            .clone()
            .context("runtime did not capture the embeddings")?;
        for l in 0..c.n_layers {
            let lc = cap.layers.get(l).context("missing layer capture")?;
            let probs = lc.attention.as_ref().context("missing attention capture")?;
            let post = lc.mlp_post.as_ref().context("missing MLP capture")?;
            let resid = lc.residual.as_ref().context("missing residual capture")?;
            let attn_in = rms_norm(&prev, param(Role::AttnNorm, Some(l))?, c.norm_eps);
            let v = matmul_nt(&attn_in, param(Role::Value, Some(l))?, n, d, kd);
            let mut o_in = vec![0f32; n * qd];
            for h in 0..c.n_heads {
                let kvh = h / group;
                for t in 0..n {
                    let p = &probs[(h * n + t) * n..(h * n + t + 1) * n];
                    let dst = &mut o_in[t * qd + h * hd..t * qd + (h + 1) * hd];
                    for (s, &ps) in p.iter().enumerate().take(t + 1) {
                        let src = &v[s * kd + kvh * hd..s * kd + (kvh + 1) * hd];
                        for (o, &vv) in dst.iter_mut().zip(src) {
                            *o += ps * vv;
                        }
                    }
                }
            }
            let o = matmul_nt(&o_in, param(Role::AttnOutput, Some(l))?, n, qd, d);
            let mid: Vec<f32> = prev.iter().zip(&o).map(|(a, b)| a + b).collect();
            let ffn_in = rms_norm(&mid, param(Role::MlpNorm, Some(l))?, c.norm_eps);
            let down = matmul_nt(post, param(Role::MlpDown, Some(l))?, n, ff, d);
            let rebuilt: Vec<f32> = mid.iter().zip(&down).map(|(a, b)| a + b).collect();
            worst = worst.max(rel_diff(&rebuilt, resid));
            add_gram(&mut gram, Site::AttnIn(l), &attn_in, n, d);
            add_gram(&mut gram, Site::OIn(l), &o_in, n, qd);
            add_gram(&mut gram, Site::FfnIn(l), &ffn_in, n, d);
            add_gram(&mut gram, Site::DownIn(l), post, n, ff);
            prev.clone_from(resid);
        }
        let head_in = rms_norm(&prev, param(Role::FinalNorm, None)?, c.norm_eps);
        add_gram(&mut gram, Site::HeadIn, &head_in, n, d);
        progress();
    }
    if worst.is_nan() || worst > MAX_REBUILD_ERROR {
        bail!(
            "calibration: rebuilt residual stream differs from the captured one by {worst:.3e} (relative); the rebuild does not match this model"
        );
    }
    Ok(Calib::keeping(tokens.len(), gram, KEEP_ALL, worst))
}

/// Spearman rank correlation (average ranks for ties); `None` for fewer than 3 pairs or a
/// constant side.
#[must_use]
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 3 {
        return None;
    }
    let ra = ranks(a);
    let rb = ranks(b);
    #[allow(clippy::cast_precision_loss)]
    let n = a.len() as f64;
    let ma = ra.iter().sum::<f64>() / n;
    let mb = rb.iter().sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    if !(saa > 0.0 && sbb > 0.0) {
        return None;
    }
    Some(sab / (saa * sbb).sqrt())
}

fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]).then(i.cmp(&j)));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]].total_cmp(&v[idx[i]]).is_eq() {
            j += 1;
        }
        #[allow(clippy::cast_precision_loss)]
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_known_values() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert!((spearman(&a, &[2.0, 4.0, 6.0, 8.0, 100.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!((spearman(&a, &[5.0, 4.0, 3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-12);
        // One swap of neighbours in 5: rho = 1 - 6*2/(5*24) = 0.9.
        assert!((spearman(&a, &[1.0, 3.0, 2.0, 4.0, 5.0]).unwrap() - 0.9).abs() < 1e-12);
        // Ties get average ranks: [1, 2.5, 2.5, 4] against [1, 2, 3, 4] gives 0.9486833.
        let r = spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!((r - 0.948_683_298_050_513_8).abs() < 1e-12, "{r}");
        assert!(spearman(&a, &[1.0; 5]).is_none());
        assert!(spearman(&a[..2], &a[..2]).is_none());
    }

    #[test]
    fn rms_norm_by_hand() {
        let y = rms_norm(&[3.0, 4.0], &[1.0, 2.0], 0.0);
        // rms = sqrt(12.5)
        let s = 12.5f32.sqrt();
        assert!((y[0] - 3.0 / s).abs() < 1e-6 && (y[1] - 8.0 / s).abs() < 1e-6);
    }

    #[test]
    fn sites_by_role() {
        assert_eq!(site_of(Role::Key, Some(3)), Some(Site::AttnIn(3)));
        assert_eq!(site_of(Role::MlpUp, Some(1)), Some(Site::FfnIn(1)));
        assert_eq!(site_of(Role::TokenEmbedding, None), Some(Site::HeadIn));
        assert_eq!(site_of(Role::AttnNorm, Some(0)), None);
    }
}
