//! Entropy-coded mode of `claimlab compress`: the quantisation indices of a GGUF file coded with
//! static rANS, the file rebuilt from the container byte for byte.
//!
//! # What is coded
//! Each tensor of a block type (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K, Q8_K) is split into
//! - the **index stream**: one symbol per weight, the full quantisation level with its nibble,
//!   high-bit plane and 2-bit plane parts joined (0..2^b for a b-bit type; Q8 codes as
//!   `i8 + 128`), in element order;
//! - the **side information**: the bytes of each block that are not index bits (f16 scales and
//!   minima, packed 4/6-bit sub-block scales, Q8_K's block sums), one stream per byte position
//!   of the block ("byte planes": the high byte of an f16 scale is one stream, its low byte
//!   another).
//!
//! Every stream is coded with `claimlab_ratedist::encode_symbols` (static rANS; the stream's
//! frequency table is stored in the stream's own header), or stored raw (one byte per symbol)
//! when that is not larger. So the model is static per tensor and stream. Everything else of the
//! GGUF (header, metadata, tensor table, alignment padding, F32/F16 tensors, unknown types) is
//! stored raw, in file order, so the decoder rebuilds the original file by concatenation and
//! never needs to understand GGUF.
//!
//! # Container (little-endian)
//! ```text
//! header   "GGUFRANS" | version u32 (=1) | sections u32 | original length u64 |
//!          original CRC-32 u32 | CRC-32 of the previous 28 bytes u32
//! raw      kind u8 = 1 | length u64 | CRC-32 u32 | bytes
//! tensor   kind u8 = 2 | name length u16 | name | GGML type id u32 | blocks u64 |
//!          streams u16 | CRC-32 of this section header so far u32,
//!          then per stream: mode u8 (0 raw, 1 rANS) | symbols u64 | length u64 | CRC-32 u32 | bytes
//! ```
//! The streams of a tensor are its side byte planes in block order, then the index stream. The
//! decoder checks every length against what the type needs before allocating, every CRC, every
//! symbol against its alphabet, the total length and the CRC of the rebuilt file; a bad
//! container is an error naming the byte offset where it went wrong.
//!
//! # Rate-distortion bound
//! With the weights the quantiser started from (`reference`), the report gives for each tensor
//! the mean squared error D it achieved and two bounds on R(D) of the i.i.d. source whose law is
//! the empirical distribution of the tensor's weights, squared error:
//! - an **upper** bound, the Gaussian R_G(D) = ½ log₂(σ²/D) (the Gaussian of the same variance
//!   is the hardest source);
//! - a certified **lower** bound from Blahut-Arimoto on the weights binned into B equal bins
//!   (width Δ) with reproductions on the bin centres, evaluated at D' = (√D + Δ)²: binning the
//!   source moves each weight by at most Δ/2 and snapping a reproduction to the nearest centre
//!   by at most Δ/2, so R_binned,centres(D') ≤ R(D); BA is run at slopes until its distortion is
//!   at least D' and its certified lower bound on the rate there is reported (R is
//!   non-increasing). Where the quantiser reproduced the weights exactly (D = 0, e.g. Q4_1
//!   re-quantised from a Q4_1 input) the bound is R(0) of the empirical law itself, its entropy. B is chosen so that Δ ≈ √D/6 ([`RD_BINS_PER_RMSE`]), at most [`RD_MAX_BINS`].
//!
//! The index entropy is a zero-order (i.i.d.) statistic of the symbols; R(D) concerns the
//! weights as an i.i.d. source. The block scales of GGUF types adapt to local magnitude, which
//! no i.i.d. model of the pooled weights sees, so "index entropy ≥ R(D)" is a measured
//! comparison, not a theorem; the report counts the tensors where it holds.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context as _, Result};
use claimlab_ratedist::{
    blahut_arimoto, decode_symbols, encode_symbols, gaussian_rate_bits, histogram_pmf,
    BlahutConfig, DistortionMatrix,
};
use claimlab_weights::{dequantize, parse_gguf_bytes, DType, Model, Role, TensorInfo};
use rayon::prelude::*;
use serde::Serialize;

/// First 8 bytes of a container.
pub const MAGIC: &[u8; 8] = b"GGUFRANS";
/// Container format version.
pub const VERSION: u32 = 1;
/// Most bins of the weight histogram the Blahut-Arimoto bound uses.
pub const RD_MAX_BINS: usize = 4096;
/// Bins per √D over the weights' range: Δ ≈ √D / 6, so D' = (√D + Δ)² ≈ 1.36 D costs about
/// 0.22 bits of the bound (½ log₂ 1.36) where the cap on bins does not bind.
pub const RD_BINS_PER_RMSE: f64 = 6.0;
/// Fewest bins of the weight histogram.
pub const RD_MIN_BINS: usize = 64;
/// Certified gap at which Blahut-Arimoto stops, in nats (the reported bound is the certified
/// lower one, so the gap only costs tightness).
pub const RD_GAP_NATS: f64 = 1e-3;

/// Cap on Blahut-Arimoto's objective evaluations per slope (the lower bound stays certified
/// when it binds, only looser); near-lossless targets on fine histograms otherwise run long.
pub const RD_MAX_ITER: usize = 2000;
/// Slope trials before bisection gives up widening.
const RD_MAX_SLOPE_STEPS: usize = 24;

const KIND_RAW: u8 = 1;
const KIND_TENSOR: u8 = 2;
const MODE_RAW: u8 = 0;
const MODE_RANS: u8 = 1;
const HEADER_LEN: usize = 32;

/// Arguments of `claimlab compress decode`.
#[derive(clap::Args, Debug)]
pub struct DecodeArgs {
    /// A container written by `claimlab compress --entropy` or `claimlab compress encode`.
    pub input: PathBuf,
    /// Where to write the rebuilt GGUF.
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `claimlab compress encode`.
#[derive(clap::Args, Debug)]
pub struct EncodeArgs {
    /// Any GGUF file (ours or llama.cpp's).
    pub input: PathBuf,
    /// Where to write the container (default: INPUT.rans).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The weights the quantiser started from (a model whose tensors match by name, or by role,
    /// layer and kind): enables the distortion and R(D) columns.
    #[arg(long)]
    pub reference: Option<PathBuf>,
}

// ---------------------------------------------------------------------------------------------
// CRC-32 (IEEE 802.3, reflected, as zlib).

const fn crc_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC_TABLE: [u32; 256] = crc_table();

/// CRC-32 of `bytes` (the zlib / PNG checksum).
#[must_use]
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

// ---------------------------------------------------------------------------------------------
// Block layouts.

/// How one block type splits into side bytes and index bits.
#[derive(Debug, Clone, Copy)]
struct Layout {
    dtype: DType,
    /// Byte ranges of the block that hold side information, in order.
    side: &'static [(usize, usize)],
    /// Bits per index.
    bits: u32,
}

impl Layout {
    fn side_bytes(&self) -> usize {
        self.side.iter().map(|&(a, b)| b - a).sum()
    }
}

/// The block types the coder splits; other types pass through raw.
fn layout(dtype: DType) -> Option<Layout> {
    let (side, bits): (&'static [(usize, usize)], u32) = match dtype {
        DType::Q4_0 => (&[(0, 2)], 4),
        DType::Q4_1 => (&[(0, 4)], 4),
        DType::Q5_0 => (&[(0, 2)], 5),
        DType::Q5_1 => (&[(0, 4)], 5),
        DType::Q8_0 => (&[(0, 2)], 8),
        DType::Q2_K => (&[(0, 16), (80, 84)], 2),
        DType::Q3_K => (&[(96, 110)], 3),
        DType::Q4_K => (&[(0, 16)], 4),
        DType::Q5_K => (&[(0, 16)], 5),
        DType::Q6_K => (&[(192, 210)], 6),
        DType::Q8_K => (&[(0, 4), (260, 292)], 8),
        _ => return None,
    };
    Some(Layout { dtype, side, bits })
}

/// Writes the index of every element of `block` into `idx` (one per element).
fn block_indices(dtype: DType, b: &[u8], idx: &mut [u8]) {
    match dtype {
        DType::Q4_0 | DType::Q4_1 | DType::Q5_0 | DType::Q5_1 => {
            let (qh_at, qs_at) = match dtype {
                DType::Q4_0 => (None, 2),
                DType::Q4_1 => (None, 4),
                DType::Q5_0 => (Some(2), 6),
                _ => (Some(4), 8),
            };
            let qh = qh_at.map_or(0, |h| {
                u32::from_le_bytes([b[h], b[h + 1], b[h + 2], b[h + 3]])
            });
            for j in 0..16 {
                let q = b[qs_at + j];
                let h0 = ((qh >> j) & 1) as u8;
                let h1 = ((qh >> (j + 16)) & 1) as u8;
                idx[j] = (q & 0x0F) | (h0 << 4);
                idx[j + 16] = (q >> 4) | (h1 << 4);
            }
        }
        DType::Q8_0 => {
            for (o, &q) in idx.iter_mut().zip(&b[2..34]) {
                *o = q ^ 0x80;
            }
        }
        DType::Q8_K => {
            for (o, &q) in idx.iter_mut().zip(&b[4..260]) {
                *o = q ^ 0x80;
            }
        }
        DType::Q2_K | DType::Q3_K => {
            let qs_at = if dtype == DType::Q2_K { 16 } else { 32 };
            for (e, o) in idx.iter_mut().enumerate().take(256) {
                let (half, plane, l) = (e / 128, (e % 128) / 32, e % 32);
                let low = (b[qs_at + 32 * half + l] >> (2 * plane)) & 3;
                *o = if dtype == DType::Q3_K {
                    low | (((b[e % 32] >> (e / 32)) & 1) << 2)
                } else {
                    low
                };
            }
        }
        DType::Q4_K | DType::Q5_K => {
            let qs_at = if dtype == DType::Q4_K { 16 } else { 48 };
            for (e, o) in idx.iter_mut().enumerate().take(256) {
                let (chunk, r) = (e / 64, e % 64);
                let q = b[qs_at + 32 * chunk + r % 32];
                let low = if r < 32 { q & 0x0F } else { q >> 4 };
                *o = if dtype == DType::Q5_K {
                    let bit = 2 * chunk + usize::from(r >= 32);
                    low | (((b[16 + r % 32] >> bit) & 1) << 4)
                } else {
                    low
                };
            }
        }
        DType::Q6_K => {
            for (e, o) in idx.iter_mut().enumerate().take(256) {
                let (half, quarter, l) = (e / 128, (e % 128) / 32, e % 32);
                let ql = &b[64 * half..64 * half + 64];
                let qh = b[128 + 32 * half + l];
                let low = match quarter {
                    0 => ql[l] & 0x0F,
                    1 => ql[l + 32] & 0x0F,
                    2 => ql[l] >> 4,
                    _ => ql[l + 32] >> 4,
                };
                *o = low | (((qh >> (2 * quarter)) & 3) << 4);
            }
        }
        _ => {}
    }
}

/// Inverse of [`block_indices`]: writes the index bits into `b` (whose side bytes are already
/// in place; index bytes are overwritten).
fn pack_indices(dtype: DType, idx: &[u8], b: &mut [u8]) {
    match dtype {
        DType::Q4_0 | DType::Q4_1 | DType::Q5_0 | DType::Q5_1 => {
            let (qh_at, qs_at) = match dtype {
                DType::Q4_0 => (None, 2),
                DType::Q4_1 => (None, 4),
                DType::Q5_0 => (Some(2), 6),
                _ => (Some(4), 8),
            };
            let mut qh = 0u32;
            for j in 0..16 {
                b[qs_at + j] = (idx[j] & 0x0F) | ((idx[j + 16] & 0x0F) << 4);
                qh |= u32::from((idx[j] >> 4) & 1) << j;
                qh |= u32::from((idx[j + 16] >> 4) & 1) << (j + 16);
            }
            if let Some(h) = qh_at {
                b[h..h + 4].copy_from_slice(&qh.to_le_bytes());
            }
        }
        DType::Q8_0 => {
            for (o, &q) in b[2..34].iter_mut().zip(idx) {
                *o = q ^ 0x80;
            }
        }
        DType::Q8_K => {
            for (o, &q) in b[4..260].iter_mut().zip(idx) {
                *o = q ^ 0x80;
            }
        }
        DType::Q2_K | DType::Q3_K => {
            let qs_at = if dtype == DType::Q2_K { 16 } else { 32 };
            b[qs_at..qs_at + 64].fill(0);
            if dtype == DType::Q3_K {
                b[0..32].fill(0);
            }
            for (e, &v) in idx.iter().enumerate().take(256) {
                let (half, plane, l) = (e / 128, (e % 128) / 32, e % 32);
                b[qs_at + 32 * half + l] |= (v & 3) << (2 * plane);
                if dtype == DType::Q3_K {
                    b[e % 32] |= ((v >> 2) & 1) << (e / 32);
                }
            }
        }
        DType::Q4_K | DType::Q5_K => {
            let qs_at = if dtype == DType::Q4_K { 16 } else { 48 };
            b[qs_at..qs_at + 128].fill(0);
            if dtype == DType::Q5_K {
                b[16..48].fill(0);
            }
            for (e, &v) in idx.iter().enumerate().take(256) {
                let (chunk, r) = (e / 64, e % 64);
                let shift = if r < 32 { 0 } else { 4 };
                b[qs_at + 32 * chunk + r % 32] |= (v & 0x0F) << shift;
                if dtype == DType::Q5_K {
                    let bit = 2 * chunk + usize::from(r >= 32);
                    b[16 + r % 32] |= ((v >> 4) & 1) << bit;
                }
            }
        }
        DType::Q6_K => {
            b[0..192].fill(0);
            for (e, &v) in idx.iter().enumerate().take(256) {
                let (half, quarter, l) = (e / 128, (e % 128) / 32, e % 32);
                let at = 64 * half + if quarter % 2 == 0 { l } else { l + 32 };
                b[at] |= (v & 0x0F) << if quarter < 2 { 0 } else { 4 };
                b[128 + 32 * half + l] |= ((v >> 4) & 3) << (2 * quarter);
            }
        }
        _ => {}
    }
}

/// Splits the blocks of one tensor into its side byte planes and its index stream.
fn split_tensor(lay: Layout, data: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let (bb, be) = (lay.dtype.block_bytes(), lay.dtype.block_elems());
    let n_blocks = data.len() / bb;
    let s = lay.side_bytes();
    let mut planes = vec![Vec::with_capacity(n_blocks); s];
    let mut idx = vec![0u8; n_blocks * be];
    for (blk, out) in data.chunks_exact(bb).zip(idx.chunks_exact_mut(be)) {
        let mut p = 0;
        for &(a, b) in lay.side {
            for &v in &blk[a..b] {
                planes[p].push(v);
                p += 1;
            }
        }
        block_indices(lay.dtype, blk, out);
    }
    (planes, idx)
}

/// Inverse of [`split_tensor`].
fn join_tensor(lay: Layout, planes: &[Vec<u8>], idx: &[u8], n_blocks: usize) -> Vec<u8> {
    let (bb, be) = (lay.dtype.block_bytes(), lay.dtype.block_elems());
    let mut data = vec![0u8; n_blocks * bb];
    for (k, (blk, ix)) in data
        .chunks_exact_mut(bb)
        .zip(idx.chunks_exact(be))
        .enumerate()
    {
        let mut p = 0;
        for &(a, b) in lay.side {
            for v in &mut blk[a..b] {
                *v = planes[p][k];
                p += 1;
            }
        }
        pack_indices(lay.dtype, ix, blk);
    }
    data
}

// ---------------------------------------------------------------------------------------------
// Streams.

/// One coded stream: mode, symbol count, bytes.
struct Stream {
    mode: u8,
    symbols: u64,
    bytes: Vec<u8>,
}

fn code_stream(sym: &[u8]) -> Result<Stream> {
    let wide: Vec<u32> = sym.iter().map(|&v| u32::from(v)).collect();
    let rans = encode_symbols(&wide).context("rANS encoding")?;
    Ok(if rans.len() < sym.len() {
        Stream {
            mode: MODE_RANS,
            symbols: sym.len() as u64,
            bytes: rans,
        }
    } else {
        Stream {
            mode: MODE_RAW,
            symbols: sym.len() as u64,
            bytes: sym.to_vec(),
        }
    })
}

/// Reads the LEB128 symbol count at the start of a rANS stream (as `encode_symbols` writes it).
fn rans_count(bytes: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for (i, &b) in bytes.iter().take(10).enumerate() {
        v |= u64::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Decodes one stream to `expected` symbols below `alphabet`; `at` is its offset in the
/// container (for messages).
fn decode_stream(
    mode: u8,
    bytes: &[u8],
    expected: usize,
    alphabet: u32,
    at: usize,
) -> Result<Vec<u8>> {
    match mode {
        MODE_RAW => {
            ensure!(
                bytes.len() == expected,
                "byte {at}: raw stream of {} bytes, expected {expected}",
                bytes.len()
            );
            if let Some(i) = bytes.iter().position(|&v| u32::from(v) >= alphabet) {
                bail!(
                    "byte {}: symbol {} outside the alphabet 0..{alphabet}",
                    at + i,
                    bytes[i]
                );
            }
            Ok(bytes.to_vec())
        }
        MODE_RANS => {
            let n = rans_count(bytes)
                .with_context(|| format!("byte {at}: truncated rANS stream header"))?;
            ensure!(
                n == expected as u64,
                "byte {at}: rANS stream holds {n} symbols, expected {expected}"
            );
            let s = decode_symbols(bytes).map_err(|e| {
                anyhow::anyhow!("byte {at}: rANS stream: {e} (offset within the stream)")
            })?;
            let mut out = Vec::with_capacity(s.len());
            for (i, v) in s.into_iter().enumerate() {
                if v >= alphabet {
                    bail!("byte {at}: symbol {i} of the stream is {v}, outside the alphabet 0..{alphabet}");
                }
                out.push(v as u8);
            }
            Ok(out)
        }
        m => bail!("byte {at}: unknown stream mode {m}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Reports.

/// R(D) bounds for one tensor (see the module doc).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RdBound {
    /// Mean squared error of the quantised weights against the reference.
    pub mse: f64,
    /// Variance of the reference weights.
    pub variance: f64,
    /// Gaussian upper bound ½ log₂(σ²/D) on R(D), bits per weight (`None` when D = 0).
    pub gaussian_upper_bits: Option<f64>,
    /// Certified Blahut-Arimoto lower bound on R(D), bits per weight.
    pub ba_lower_bits: f64,
    /// Distortion D' = (√D + Δ)² the lower bound is evaluated at, and BA's distortion there.
    pub ba_target_distortion: f64,
    /// Distortion of BA's final test channel (≥ the target).
    pub ba_distortion: f64,
    /// Histogram bins B.
    pub bins: usize,
    /// Bin width Δ.
    pub bin_width: f64,
}

/// The coding of one tensor.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TensorEntropy {
    /// Tensor name.
    pub name: String,
    /// Block type.
    pub dtype: String,
    /// Weights.
    pub n_elems: u64,
    /// Bytes in the GGUF.
    pub gguf_bytes: u64,
    /// Bytes of this tensor's section in the container (headers, tables and all streams).
    pub coded_bytes: u64,
    /// Bytes of the coded index stream (its frequency table included).
    pub index_coded_bytes: u64,
    /// Raw side-information bytes (scales, minima) in the GGUF.
    pub side_raw_bytes: u64,
    /// Side information after coding its byte planes (tables included).
    pub side_coded_bytes: u64,
    /// Distinct index values.
    pub distinct: usize,
    /// Plug-in (empirical) entropy of the indices, bits per weight.
    pub index_entropy_bits: f64,
    /// Miller-Madow corrected entropy Ĥ + (K − 1)/(2 n ln 2), bits per weight.
    pub index_entropy_mm_bits: f64,
    /// R(D) bounds, when reference weights were given.
    pub rd: Option<RdBound>,
}

/// Summary of coding one GGUF file.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct EntropyReport {
    /// Input GGUF.
    pub input: PathBuf,
    /// Container written.
    pub output: PathBuf,
    /// GGUF file bytes.
    pub gguf_file_bytes: u64,
    /// Container bytes.
    pub container_bytes: u64,
    /// Bytes stored raw (header, metadata, padding, non-block tensors).
    pub raw_bytes: u64,
    /// Coded tensors.
    pub coded_tensors: usize,
    /// Weights in coded tensors.
    pub coded_elems: u64,
    /// GGUF bytes of the coded tensors.
    pub coded_tensors_gguf_bytes: u64,
    /// Container bytes of the coded tensors' sections.
    pub coded_tensors_bytes: u64,
    /// GGUF bits per weight of the coded tensors.
    pub gguf_bpw: f64,
    /// Coded bits per weight (indices and side information, tables included).
    pub coded_bpw: f64,
    /// Coded index streams alone, bits per weight.
    pub index_coded_bpw: f64,
    /// Raw side information, bits per weight.
    pub side_raw_bpw: f64,
    /// Coded side information, bits per weight.
    pub side_coded_bpw: f64,
    /// Weighted plug-in index entropy, bits per weight.
    pub index_entropy_bpw: f64,
    /// Weighted Miller-Madow index entropy, bits per weight.
    pub index_entropy_mm_bpw: f64,
    /// Weighted certified R(D) lower bound over the tensors with a reference (bits per weight).
    pub rd_lower_bpw: Option<f64>,
    /// Weighted Gaussian R(D) upper bound over the same tensors.
    pub rd_gaussian_upper_bpw: Option<f64>,
    /// Index entropy of those same tensors (to compare with the two bounds).
    pub rd_tensors_index_entropy_bpw: Option<f64>,
    /// Tensors with a reference.
    pub rd_tensors: usize,
    /// Tensors where GGUF bpw ≥ coded bpw ≥ index entropy ≥ R(D) lower bound holds.
    pub ordering_holds: usize,
    /// Why some tensors have no R(D) (no reference, no matching tensor).
    pub rd_note: String,
    /// Wall seconds of splitting and coding.
    pub encode_seconds: f64,
    /// Wall seconds of decoding the container back (checked byte-identical).
    pub decode_seconds: f64,
    /// Wall seconds of the R(D) bounds.
    pub rd_seconds: f64,
    /// Per tensor.
    pub tensors: Vec<TensorEntropy>,
}

fn entropy_of_u8(sym: &[u8]) -> (usize, f64, f64) {
    let mut counts = [0u64; 256];
    for &v in sym {
        counts[v as usize] += 1;
    }
    let n = sym.len() as f64;
    if sym.is_empty() {
        return (0, 0.0, 0.0);
    }
    let mut h = 0.0;
    let mut k = 0usize;
    for &c in &counts {
        if c > 0 {
            k += 1;
            let p = c as f64 / n;
            h -= p * p.log2();
        }
    }
    let mm = h + (k as f64 - 1.0) / (2.0 * n * std::f64::consts::LN_2);
    (k, h, mm)
}

// ---------------------------------------------------------------------------------------------
// Encoder and decoder.

fn put_stream(out: &mut Vec<u8>, s: &Stream) {
    out.push(s.mode);
    out.extend_from_slice(&s.symbols.to_le_bytes());
    out.extend_from_slice(&(s.bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32(&s.bytes).to_le_bytes());
    out.extend_from_slice(&s.bytes);
}

/// Codes one tensor's data: the section bytes and its entry (without R(D)).
fn code_tensor(t: &TensorInfo, lay: Layout, data: &[u8]) -> Result<(Vec<u8>, TensorEntropy)> {
    let (planes, idx) = split_tensor(lay, data);
    let n_blocks = data.len() / lay.dtype.block_bytes();
    let mut sec = vec![KIND_TENSOR];
    let name = t.name.as_bytes();
    let name_len = u16::try_from(name.len())
        .with_context(|| format!("tensor name of {} bytes is too long", name.len()))?;
    sec.extend_from_slice(&name_len.to_le_bytes());
    sec.extend_from_slice(name);
    let id = lay
        .dtype
        .ggml_id()
        .context("block type without a GGML id")?;
    sec.extend_from_slice(&id.to_le_bytes());
    sec.extend_from_slice(&(n_blocks as u64).to_le_bytes());
    sec.extend_from_slice(&((planes.len() + 1) as u16).to_le_bytes());
    let c = crc32(&sec);
    sec.extend_from_slice(&c.to_le_bytes());
    let head = sec.len();
    for p in &planes {
        put_stream(&mut sec, &code_stream(p)?);
    }
    let side_end = sec.len();
    put_stream(&mut sec, &code_stream(&idx)?);
    let (distinct, h, mm) = entropy_of_u8(&idx);
    let e = TensorEntropy {
        name: t.name.clone(),
        dtype: lay.dtype.to_string(),
        n_elems: idx.len() as u64,
        gguf_bytes: data.len() as u64,
        coded_bytes: sec.len() as u64,
        index_coded_bytes: (sec.len() - side_end) as u64,
        side_raw_bytes: (n_blocks * lay.side_bytes()) as u64,
        side_coded_bytes: (side_end - head) as u64,
        distinct,
        index_entropy_bits: h,
        index_entropy_mm_bits: mm,
        rd: None,
    };
    Ok((sec, e))
}

/// Codes a whole GGUF file (bytes) into a container; returns the container and one entry per
/// coded tensor (no R(D) yet) plus the raw byte count.
///
/// # Errors
/// When the bytes are not a GGUF our reader accepts.
pub fn encode_gguf(gguf: &[u8]) -> Result<(Vec<u8>, Vec<TensorEntropy>, u64)> {
    let parsed = parse_gguf_bytes(gguf).context("parsing the GGUF")?;
    let mut coded: Vec<(&TensorInfo, Layout)> = parsed
        .tensors
        .iter()
        .filter_map(|t| {
            let lay = layout(t.dtype)?;
            (t.nbytes > 0 && t.dtype.bytes_for(t.n_elems()) == Some(t.nbytes)).then_some((t, lay))
        })
        .collect();
    coded.sort_by_key(|(t, _)| t.offset);
    let sections: Vec<(Vec<u8>, TensorEntropy)> = coded
        .par_iter()
        .map(|&(t, lay)| {
            let data = &gguf[t.offset as usize..(t.offset + t.nbytes) as usize];
            code_tensor(t, lay, data).with_context(|| format!("coding {}", t.name))
        })
        .collect::<Result<_>>()?;
    let mut out = Vec::with_capacity(gguf.len() / 2);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // section count, filled in below
    out.extend_from_slice(&(gguf.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32(gguf).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // header CRC, filled in below
    let mut n_sections = 0u32;
    let mut raw_bytes = 0u64;
    let mut pos = 0usize;
    let mut put_raw = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.push(KIND_RAW);
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(&crc32(bytes).to_le_bytes());
        out.extend_from_slice(bytes);
        raw_bytes += bytes.len() as u64;
    };
    let mut entries = Vec::with_capacity(sections.len());
    for ((t, _), (sec, e)) in coded.iter().zip(sections) {
        let start = t.offset as usize;
        if start > pos {
            put_raw(&mut out, &gguf[pos..start]);
            n_sections += 1;
        }
        out.extend_from_slice(&sec);
        n_sections += 1;
        pos = start + t.nbytes as usize;
        entries.push(e);
    }
    if pos < gguf.len() {
        put_raw(&mut out, &gguf[pos..]);
        n_sections += 1;
    }
    out[12..16].copy_from_slice(&n_sections.to_le_bytes());
    let hc = crc32(&out[..HEADER_LEN - 4]);
    out[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&hc.to_le_bytes());
    Ok((out, entries, raw_bytes))
}

/// A little-endian cursor whose errors name the container offset.
struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        let Some(end) = end else {
            bail!(
                "byte {}: truncated container ({what} needs {n} bytes, {} left)",
                self.pos,
                self.b.len() - self.pos
            );
        };
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16> {
        let s = self.take(2, what)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        let s = self.take(4, what)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        let s = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }
}

/// One parsed section, ready to decode.
enum Job<'a> {
    Raw(&'a [u8]),
    Tensor {
        lay: Layout,
        n_blocks: usize,
        /// (mode, bytes, offset in the container) per stream.
        streams: Vec<(u8, &'a [u8], usize)>,
        name: String,
    },
}

fn read_stream<'a>(c: &mut Cur<'a>, expected: u64) -> Result<(u8, &'a [u8], usize)> {
    let at = c.pos;
    let mode = c.u8("stream mode")?;
    let symbols = c.u64("stream symbol count")?;
    ensure!(
        symbols == expected,
        "byte {at}: stream of {symbols} symbols, expected {expected}"
    );
    let len = c.u64("stream length")?;
    let crc = c.u32("stream CRC")?;
    let data_at = c.pos;
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= c.b.len() - c.pos);
    let Some(len) = len else {
        bail!("byte {data_at}: stream length exceeds the container");
    };
    let data = c.take(len, "stream bytes")?;
    ensure!(
        crc32(data) == crc,
        "byte {data_at}: stream CRC mismatch (corrupt container)"
    );
    Ok((mode, data, data_at))
}

/// Rebuilds the original GGUF from a container, checking every length and checksum.
///
/// # Errors
/// A clear message with the byte offset for any truncated, corrupt or inconsistent container;
/// never panics on bad bytes.
pub fn decode_container(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut c = Cur { b: bytes, pos: 0 };
    let magic = c.take(8, "magic")?;
    ensure!(
        magic == MAGIC,
        "byte 0: not an entropy-coded GGUF container (magic {magic:02x?})"
    );
    let version = c.u32("version")?;
    ensure!(
        version == VERSION,
        "byte 8: unsupported container version {version}"
    );
    let n_sections = c.u32("section count")?;
    let orig_len = c.u64("original length")?;
    let orig_crc = c.u32("original CRC")?;
    let hcrc = c.u32("header CRC")?;
    ensure!(
        crc32(&bytes[..HEADER_LEN - 4]) == hcrc,
        "byte 28: header CRC mismatch (corrupt container header)"
    );
    let mut jobs = Vec::new();
    let mut total = 0u64;
    for k in 0..n_sections {
        let at = c.pos;
        let kind = c.u8("section kind")?;
        let (job, len) = match kind {
            KIND_RAW => {
                let len = c.u64("raw length")?;
                let crc = c.u32("raw CRC")?;
                let len_ok = usize::try_from(len)
                    .ok()
                    .filter(|&l| l <= bytes.len() - c.pos);
                let Some(len) = len_ok else {
                    bail!("byte {at}: raw section {k} of {len} bytes exceeds the container");
                };
                let data_at = c.pos;
                let data = c.take(len, "raw bytes")?;
                ensure!(
                    crc32(data) == crc,
                    "byte {data_at}: raw section {k} CRC mismatch"
                );
                (Job::Raw(data), len as u64)
            }
            KIND_TENSOR => {
                let name_len = c.u16("name length")?;
                let name = c.take(usize::from(name_len), "name")?;
                let name = String::from_utf8_lossy(name).into_owned();
                let id_at = c.pos;
                let id = c.u32("type id")?;
                let n_blocks = c.u64("block count")?;
                let n_streams = c.u16("stream count")?;
                let head_end = c.pos;
                let crc = c.u32("section header CRC")?;
                ensure!(
                    crc32(&bytes[at..head_end]) == crc,
                    "byte {head_end}: tensor section {k} header CRC mismatch"
                );
                let lay = DType::from_ggml_id(id).and_then(layout);
                let Some(lay) = lay else {
                    bail!("byte {id_at}: tensor {name}: type id {id} is not a coded block type");
                };
                ensure!(
                    usize::from(n_streams) == lay.side_bytes() + 1,
                    "byte {head_end}: tensor {name}: {n_streams} streams, {} expected for {}",
                    lay.side_bytes() + 1,
                    lay.dtype
                );
                let tbytes = n_blocks
                    .checked_mul(lay.dtype.block_bytes() as u64)
                    .filter(|&b| b <= orig_len.saturating_sub(total));
                let Some(tbytes) = tbytes else {
                    bail!("byte {id_at}: tensor {name}: {n_blocks} blocks exceed the original length {orig_len}");
                };
                let n_blocks = n_blocks as usize;
                let mut streams = Vec::with_capacity(usize::from(n_streams));
                for _ in 0..lay.side_bytes() {
                    streams.push(read_stream(&mut c, n_blocks as u64)?);
                }
                let n_idx = (n_blocks * lay.dtype.block_elems()) as u64;
                streams.push(read_stream(&mut c, n_idx)?);
                (
                    Job::Tensor {
                        lay,
                        n_blocks,
                        streams,
                        name,
                    },
                    tbytes,
                )
            }
            other => bail!("byte {at}: unknown section kind {other}"),
        };
        total = total
            .checked_add(len)
            .filter(|&t| t <= orig_len)
            .with_context(|| {
                format!("byte {at}: sections exceed the original length {orig_len}")
            })?;
        jobs.push(job);
    }
    ensure!(
        c.pos == bytes.len(),
        "byte {}: {} trailing bytes after the last section",
        c.pos,
        bytes.len() - c.pos
    );
    ensure!(
        total == orig_len,
        "byte {}: sections rebuild {total} bytes, the header says {orig_len}",
        c.pos
    );
    let parts: Vec<Vec<u8>> = jobs
        .par_iter()
        .map(|j| match j {
            Job::Raw(d) => Ok(d.to_vec()),
            Job::Tensor {
                lay,
                n_blocks,
                streams,
                name,
            } => {
                let mut planes = Vec::with_capacity(streams.len() - 1);
                for &(mode, data, at) in &streams[..streams.len() - 1] {
                    planes.push(decode_stream(mode, data, *n_blocks, 256, at)?);
                }
                let &(mode, data, at) = &streams[streams.len() - 1];
                let n_idx = n_blocks * lay.dtype.block_elems();
                let idx = decode_stream(mode, data, n_idx, 1 << lay.bits, at)
                    .with_context(|| format!("tensor {name}"))?;
                Ok(join_tensor(*lay, &planes, &idx, *n_blocks))
            }
        })
        .collect::<Result<_>>()?;
    let mut out = Vec::with_capacity(orig_len as usize);
    for p in parts {
        out.extend_from_slice(&p);
    }
    ensure!(
        crc32(&out) == orig_crc,
        "byte 24: the rebuilt file's CRC-32 does not match the header's"
    );
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// R(D).

/// The R(D) bounds of the weights `w` quantised with mean squared error `mse` (module doc).
///
/// # Errors
/// Non-finite weights, fewer than 2 weights, all weights equal, or a Blahut-Arimoto failure.
pub fn rd_bound(w: &[f32], mse: f64) -> Result<RdBound> {
    ensure!(w.len() >= 2, "need at least 2 weights, got {}", w.len());
    ensure!(mse.is_finite() && mse >= 0.0, "bad distortion {mse}");
    let x: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let variance = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let lo = x.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    ensure!(hi > lo, "all weights are equal");
    if mse == 0.0 {
        // Exact reproduction: R(0) of the empirical law is its entropy, counted exactly.
        let mut bits: Vec<u32> = w.iter().map(|v| (v + 0.0).to_bits()).collect();
        bits.sort_unstable();
        let mut h = 0.0;
        let mut i = 0;
        while i < bits.len() {
            let j = bits[i..].partition_point(|&b| b == bits[i]) + i;
            let p = (j - i) as f64 / n;
            h -= p * p.log2();
            i = j;
        }
        return Ok(RdBound {
            mse,
            variance,
            gaussian_upper_bits: None,
            ba_lower_bits: h,
            ba_target_distortion: 0.0,
            ba_distortion: 0.0,
            bins: 0,
            bin_width: 0.0,
        });
    }
    let gaussian_upper_bits = if mse > 0.0 {
        Some(if mse >= variance {
            0.0
        } else {
            gaussian_rate_bits(variance, mse)?
        })
    } else {
        None
    };
    let want = RD_BINS_PER_RMSE * (hi - lo) / mse.sqrt().max(1e-300);
    let bins = if want.is_finite() {
        (want.ceil() as usize).clamp(RD_MIN_BINS, RD_MAX_BINS)
    } else {
        RD_MAX_BINS
    };
    let h = histogram_pmf(&x, bins)?;
    let d_target = (mse.sqrt() + h.bin_width).powi(2);
    let (src, p): (Vec<f64>, Vec<f64>) = h
        .centers
        .iter()
        .zip(&h.probs)
        .filter(|(_, &p)| p > 0.0)
        .map(|(&c, &p)| (c, p))
        .unzip();
    let dist = DistortionMatrix::squared_error(&src, &h.centers)?;
    let cfg = BlahutConfig {
        tol_gap_nats: RD_GAP_NATS,
        max_iter: RD_MAX_ITER,
        ..Default::default()
    };
    // D(s) falls with s. Find s with D(s) ≥ D' (valid: R(D') ≥ R(D(s)) ≥ its lower bound) as
    // large as a few steps allow.
    let mut s = 1.0 / (2.0 * d_target);
    let mut best = None;
    let mut invalid_s = None;
    for _ in 0..RD_MAX_SLOPE_STEPS {
        let pt = blahut_arimoto(&p, &dist, s, &cfg)?;
        if pt.distortion >= d_target {
            best = Some(pt);
            if invalid_s.is_some() {
                break;
            }
            s *= 2.0;
        } else {
            invalid_s = Some(s);
            if best.is_some() {
                break;
            }
            s /= 2.0;
        }
    }
    let (Some(mut best), Some(mut s_hi)) = (best, invalid_s) else {
        // D' above the distortion at slope → 0 (the source's variance): R(D') = 0.
        return Ok(RdBound {
            mse,
            variance,
            gaussian_upper_bits,
            ba_lower_bits: 0.0,
            ba_target_distortion: d_target,
            ba_distortion: d_target,
            bins,
            bin_width: h.bin_width,
        });
    };
    let mut s_lo = best.slope_nats;
    for _ in 0..4 {
        let mid = (s_lo * s_hi).sqrt();
        let pt = blahut_arimoto(&p, &dist, mid, &cfg)?;
        if pt.distortion >= d_target {
            s_lo = mid;
            best = pt;
        } else {
            s_hi = mid;
        }
    }
    Ok(RdBound {
        mse,
        variance,
        gaussian_upper_bits,
        ba_lower_bits: best.rate_lower_bits.max(0.0),
        ba_target_distortion: d_target,
        ba_distortion: best.distortion,
        bins,
        bin_width: h.bin_width,
    })
}

/// The reference tensor for `t`: same name, else same role, layer and kind (unless the role is
/// `Other`), with the same number of elements.
fn reference_for<'m>(r: &'m Model, t: &TensorInfo) -> Option<&'m TensorInfo> {
    let by_name = r.tensors().iter().find(|u| u.name == t.name);
    let found = by_name.or_else(|| {
        (t.role != Role::Other)
            .then(|| r.find(t.role, t.layer, t.param))
            .flatten()
    })?;
    (found.n_elems() == t.n_elems()).then_some(found)
}

// ---------------------------------------------------------------------------------------------
// Files and CLI.

fn tmp_path(out: &Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map_or_else(|| "out".into(), std::ffi::OsStr::to_os_string);
    name.push(format!(".tmp{}", std::process::id()));
    out.with_file_name(name)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

/// The container path beside a GGUF: `OUT.gguf.rans`.
#[must_use]
pub fn container_path(gguf: &Path) -> PathBuf {
    let mut s = gguf.as_os_str().to_os_string();
    s.push(".rans");
    PathBuf::from(s)
}

/// Codes the GGUF at `input` into a container at `output`, decodes it back and checks it is
/// byte-identical, and (with `reference`) adds the R(D) bounds.
///
/// # Errors
/// Unreadable input, a file our GGUF reader rejects, a failed round trip, or a write failure.
#[allow(clippy::too_many_lines)]
pub fn encode_file(
    input: &Path,
    output: &Path,
    reference: Option<&Model>,
) -> Result<EntropyReport> {
    let gguf = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let t0 = Instant::now();
    let (container, mut tensors, raw_bytes) =
        encode_gguf(&gguf).with_context(|| format!("coding {}", input.display()))?;
    let encode_seconds = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let back = decode_container(&container).context("decoding the container just written")?;
    let decode_seconds = t1.elapsed().as_secs_f64();
    ensure!(
        back == gguf,
        "internal error: the container does not decode to the input"
    );
    drop(back);
    write_atomic(output, &container)?;

    let t2 = Instant::now();
    let mut rd_note = String::new();
    if let Some(r) = reference {
        let parsed = parse_gguf_bytes(&gguf)?;
        let infos: Vec<&TensorInfo> = tensors
            .iter()
            .map(|e| {
                parsed
                    .tensors
                    .iter()
                    .find(|t| t.name == e.name)
                    .context("coded tensor missing from the table")
            })
            .collect::<Result<_>>()?;
        let bounds: Vec<Option<RdBound>> = infos
            .par_iter()
            .map(|t| -> Result<Option<RdBound>> {
                let Some(rt) = reference_for(r, t) else {
                    return Ok(None);
                };
                let w = r.tensor_f32(&rt.name)?;
                let data = &gguf[t.offset as usize..(t.offset + t.nbytes) as usize];
                let q = dequantize(t.dtype, data, t.n_elems() as usize)?;
                let mse = w
                    .iter()
                    .zip(&q)
                    .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                    .sum::<f64>()
                    / w.len() as f64;
                Ok(Some(
                    rd_bound(&w, mse).with_context(|| format!("R(D) of {}", t.name))?,
                ))
            })
            .collect::<Result<_>>()?;
        let missing = bounds.iter().filter(|b| b.is_none()).count();
        for (e, b) in tensors.iter_mut().zip(bounds) {
            e.rd = b;
        }
        if missing > 0 {
            rd_note = format!(
                "{missing} coded tensors have no matching tensor in the reference {}",
                r.path().display()
            );
        }
    } else {
        rd_note = "no reference weights: distortion and R(D) not computed".into();
    }
    let rd_seconds = t2.elapsed().as_secs_f64();

    let sum = |f: &dyn Fn(&TensorEntropy) -> f64| tensors.iter().map(f).sum::<f64>();
    let n = sum(&|e| e.n_elems as f64);
    let bpw = |bytes: f64| if n > 0.0 { 8.0 * bytes / n } else { 0.0 };
    let rd: Vec<&TensorEntropy> = tensors.iter().filter(|e| e.rd.is_some()).collect();
    let n_rd: f64 = rd.iter().map(|e| e.n_elems as f64).sum();
    let wavg = |f: &dyn Fn(&TensorEntropy) -> f64| {
        (n_rd > 0.0).then(|| rd.iter().map(|e| e.n_elems as f64 * f(e)).sum::<f64>() / n_rd)
    };
    let rd_lower_bpw = wavg(&|e| e.rd.as_ref().map_or(0.0, |r| r.ba_lower_bits));
    let rd_gaussian_upper_bpw = wavg(&|e| {
        e.rd.as_ref()
            .and_then(|r| r.gaussian_upper_bits)
            .unwrap_or(f64::INFINITY)
    });
    let rd_tensors_index_entropy_bpw = wavg(&|e| e.index_entropy_bits);
    let ordering_holds = rd
        .iter()
        .filter(|e| {
            let ne = e.n_elems as f64;
            let (g, c) = (
                8.0 * e.gguf_bytes as f64 / ne,
                8.0 * e.coded_bytes as f64 / ne,
            );
            let r = e.rd.as_ref().map_or(0.0, |r| r.ba_lower_bits);
            g >= c && c >= e.index_entropy_bits && e.index_entropy_bits >= r
        })
        .count();
    let coded_tensors_gguf_bytes = tensors.iter().map(|e| e.gguf_bytes).sum::<u64>();
    let coded_tensors_bytes = tensors.iter().map(|e| e.coded_bytes).sum::<u64>();
    Ok(EntropyReport {
        input: input.to_path_buf(),
        output: output.to_path_buf(),
        gguf_file_bytes: gguf.len() as u64,
        container_bytes: container.len() as u64,
        raw_bytes,
        coded_tensors: tensors.len(),
        coded_elems: n as u64,
        coded_tensors_gguf_bytes,
        coded_tensors_bytes,
        gguf_bpw: bpw(coded_tensors_gguf_bytes as f64),
        coded_bpw: bpw(coded_tensors_bytes as f64),
        index_coded_bpw: bpw(sum(&|e| e.index_coded_bytes as f64)),
        side_raw_bpw: bpw(sum(&|e| e.side_raw_bytes as f64)),
        side_coded_bpw: bpw(sum(&|e| e.side_coded_bytes as f64)),
        index_entropy_bpw: if n > 0.0 {
            sum(&|e| e.n_elems as f64 * e.index_entropy_bits) / n
        } else {
            0.0
        },
        index_entropy_mm_bpw: if n > 0.0 {
            sum(&|e| e.n_elems as f64 * e.index_entropy_mm_bits) / n
        } else {
            0.0
        },
        rd_lower_bpw,
        rd_gaussian_upper_bpw,
        rd_tensors_index_entropy_bpw,
        rd_tensors: rd.len(),
        ordering_holds,
        rd_note,
        encode_seconds,
        decode_seconds,
        rd_seconds,
        tensors,
    })
}

/// Rebuilds the GGUF at `output` from the container at `input`; returns (bytes, seconds).
///
/// # Errors
/// Unreadable input, a corrupt container (with the byte offset), or a write failure.
pub fn decode_file(input: &Path, output: &Path) -> Result<(u64, f64)> {
    let bytes = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let t0 = Instant::now();
    let gguf = decode_container(&bytes).with_context(|| format!("decoding {}", input.display()))?;
    let secs = t0.elapsed().as_secs_f64();
    write_atomic(output, &gguf)?;
    Ok((gguf.len() as u64, secs))
}

/// Human-readable summary of a report (totals, then per-type lines).
#[must_use]
pub fn summary_text(r: &EntropyReport) -> String {
    let mut s = String::new();
    let f = |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.3}"));
    let _ = writeln!(
        s,
        "entropy-coded {} -> {}: {} bytes -> {} bytes ({:.3}x); {} coded tensors, {} bytes stored raw",
        r.input.display(),
        r.output.display(),
        r.gguf_file_bytes,
        r.container_bytes,
        r.gguf_file_bytes as f64 / r.container_bytes.max(1) as f64,
        r.coded_tensors,
        r.raw_bytes
    );
    let _ = writeln!(
        s,
        "  bits/weight over the coded tensors: GGUF {:.3} >= coded {:.3} (indices {:.3} + side {:.3}, raw side {:.3}); index entropy {:.3} (Miller-Madow {:.3})",
        r.gguf_bpw, r.coded_bpw, r.index_coded_bpw, r.side_coded_bpw, r.side_raw_bpw, r.index_entropy_bpw, r.index_entropy_mm_bpw
    );
    let _ = writeln!(
        s,
        "  R(D) over {} tensors with reference weights: certified lower bound {} <= R(D) <= Gaussian {} (their index entropy {}); ordering GGUF >= coded >= entropy >= R(D) lower holds for {} of {}{}",
        r.rd_tensors,
        f(r.rd_lower_bpw),
        f(r.rd_gaussian_upper_bpw),
        f(r.rd_tensors_index_entropy_bpw),
        r.ordering_holds,
        r.rd_tensors,
        if r.rd_note.is_empty() { String::new() } else { format!(" ({})", r.rd_note) }
    );
    let _ = writeln!(
        s,
        "  time: encode {:.2} s, decode (checked byte-identical) {:.2} s, R(D) {:.2} s",
        r.encode_seconds, r.decode_seconds, r.rd_seconds
    );
    let _ = writeln!(
        s,
        "  {:<28} {:>5} {:>10} {:>7} {:>7} {:>7} {:>7} {:>7}",
        "tensor", "type", "weights", "gguf", "coded", "H(idx)", "R lo", "R gau"
    );
    for e in &r.tensors {
        let ne = e.n_elems as f64;
        let _ = writeln!(
            s,
            "  {:<28} {:>5} {:>10} {:>7.3} {:>7.3} {:>7.3} {:>7} {:>7}",
            e.name,
            e.dtype,
            e.n_elems,
            8.0 * e.gguf_bytes as f64 / ne,
            8.0 * e.coded_bytes as f64 / ne,
            e.index_entropy_bits,
            f(e.rd.as_ref().map(|r| r.ba_lower_bits)),
            f(e.rd.as_ref().and_then(|r| r.gaussian_upper_bits)),
        );
    }
    s
}

/// `claimlab compress decode IN --out OUT`.
///
/// # Errors
/// As [`decode_file`].
pub fn decode_cmd(a: &DecodeArgs, json_out: bool) -> Result<String> {
    let (bytes, secs) = decode_file(&a.input, &a.out)?;
    if json_out {
        return Ok(serde_json::to_string_pretty(&serde_json::json!({
            "input": a.input, "output": a.out, "bytes": bytes, "decode_seconds": secs,
        }))?);
    }
    Ok(format!(
        "decoded {} -> {} ({bytes} bytes, checksum verified) in {secs:.2} s\n",
        a.input.display(),
        a.out.display()
    ))
}

/// `claimlab compress encode IN [--out X] [--reference MODEL]`.
///
/// # Errors
/// As [`encode_file`], and an unreadable reference model.
pub fn encode_cmd(a: &EncodeArgs, json_out: bool) -> Result<String> {
    let out = a.out.clone().unwrap_or_else(|| container_path(&a.input));
    let reference = a
        .reference
        .as_deref()
        .map(|p| Model::open(p).with_context(|| format!("opening reference {}", p.display())))
        .transpose()?;
    let r = encode_file(&a.input, &out, reference.as_ref())?;
    if json_out {
        return Ok(serde_json::to_string_pretty(&r)?);
    }
    Ok(summary_text(&r))
}

/// `claimlab compress --entropy ...`: runs the compressor, then codes its output beside it
/// (`OUT.gguf.rans`) with the input model's weights as the R(D) reference, and adds the summary
/// to the report (`"entropy"` in the JSON manifest).
///
/// # Errors
/// As the compressor and [`encode_file`].
pub fn compress_with_entropy(mut args: super::Args, json_out: bool) -> Result<String> {
    args.entropy = false;
    let reference = match super::bert::bert_model(&args)? {
        Some(m) => m,
        None => super::super::open_model(
            args.model.as_deref(),
            claimlab_weights::Pinned::SmolLm2,
            args.cache_dir.clone(),
        )?,
    };
    let out = args.out.clone();
    let report = super::run(args, json_out)?;
    let r = encode_file(&out, &container_path(&out), Some(&reference))?;
    if json_out {
        let mut v: serde_json::Value =
            serde_json::from_str(&report).context("the compress report is not JSON")?;
        if let Some(o) = v.as_object_mut() {
            o.insert("entropy".into(), serde_json::to_value(&r)?);
        }
        return Ok(serde_json::to_string_pretty(&v)?);
    }
    Ok(format!("{report}\n{}", summary_text(&r)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimlab_weights::{quantize, GgufValue, GgufWriter};
    use rand::{Rng as _, RngExt as _, SeedableRng as _};
    use rand_xoshiro::Xoshiro256PlusPlus;

    const TYPES: [DType; 11] = [
        DType::Q4_0,
        DType::Q4_1,
        DType::Q5_0,
        DType::Q5_1,
        DType::Q8_0,
        DType::Q2_K,
        DType::Q3_K,
        DType::Q4_K,
        DType::Q5_K,
        DType::Q6_K,
        DType::Q8_K,
    ];

    fn rng(seed: u64) -> Xoshiro256PlusPlus {
        Xoshiro256PlusPlus::seed_from_u64(seed)
    }

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn layouts_cover_every_byte() {
        for dt in TYPES {
            let lay = layout(dt).unwrap();
            let idx_bits = dt.block_elems() * lay.bits as usize;
            assert_eq!(
                8 * lay.side_bytes() + idx_bits,
                8 * dt.block_bytes(),
                "{dt}"
            );
        }
    }

    #[test]
    fn split_and_join_are_inverse_on_random_blocks() {
        let mut r = rng(1);
        for dt in TYPES {
            let lay = layout(dt).unwrap();
            let data: Vec<u8> = (0..7 * dt.block_bytes())
                .map(|_| r.random::<u8>())
                .collect();
            let (planes, idx) = split_tensor(lay, &data);
            assert!(idx.iter().all(|&v| u32::from(v) < 1 << lay.bits), "{dt}");
            assert_eq!(join_tensor(lay, &planes, &idx, 7), data, "{dt}");
        }
    }

    /// Within a sub-block (same scale and minimum), the dequantised value is an affine function
    /// of the true quantisation level with a non-zero slope (unless that sub-block's scale is 0),
    /// so equal indices must give equal values and different indices different values. A wrong
    /// bit mapping breaks this. The 32-element types and Q8 are checked against their formulas.
    #[test]
    fn indices_are_the_quantisation_levels() {
        let mut r = rng(2);
        for dt in TYPES {
            let lay = layout(dt).unwrap();
            for _ in 0..20 {
                let mut b: Vec<u8> = (0..dt.block_bytes()).map(|_| r.random::<u8>()).collect();
                // f16 1.0 for d, 0.5 for the second f16 (min or dmin) where present.
                match dt {
                    DType::Q2_K => b[80..84].copy_from_slice(&[0x00, 0x3C, 0x00, 0x38]),
                    DType::Q3_K => b[108..110].copy_from_slice(&[0x00, 0x3C]),
                    DType::Q6_K => b[208..210].copy_from_slice(&[0x00, 0x3C]),
                    DType::Q8_K => b[0..4].copy_from_slice(&1.0f32.to_le_bytes()),
                    DType::Q4_0 | DType::Q5_0 | DType::Q8_0 => {
                        b[0..2].copy_from_slice(&[0x00, 0x3C]);
                    }
                    _ => b[0..4].copy_from_slice(&[0x00, 0x3C, 0x00, 0x38]),
                }
                // + 0.0 turns −0 into +0, so bit patterns compare as values.
                let y: Vec<f32> = dequantize(dt, &b, dt.block_elems())
                    .unwrap()
                    .into_iter()
                    .map(|v| v + 0.0)
                    .collect();
                let mut idx = vec![0u8; dt.block_elems()];
                block_indices(dt, &b, &mut idx);
                let want: Option<Vec<f32>> = match dt {
                    DType::Q4_0 => Some(idx.iter().map(|&q| f32::from(q) - 8.0 + 0.0).collect()),
                    DType::Q5_0 => Some(idx.iter().map(|&q| f32::from(q) - 16.0).collect()),
                    DType::Q4_1 | DType::Q5_1 => {
                        Some(idx.iter().map(|&q| f32::from(q) + 0.5).collect())
                    }
                    DType::Q8_0 | DType::Q8_K => {
                        Some(idx.iter().map(|&q| f32::from(q) - 128.0).collect())
                    }
                    _ => None,
                };
                if let Some(w) = want {
                    assert_eq!(
                        w.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        "{dt}"
                    );
                    continue;
                }
                let sub = match dt {
                    DType::Q4_K | DType::Q5_K => 32,
                    _ => 16,
                };
                let _ = lay;
                for g in 0..dt.block_elems() / sub {
                    let ys = &y[g * sub..(g + 1) * sub];
                    let is = &idx[g * sub..(g + 1) * sub];
                    if ys.iter().all(|v| v.to_bits() == ys[0].to_bits()) {
                        continue; // zero scale: no information
                    }
                    for i in 0..sub {
                        for j in 0..sub {
                            assert_eq!(
                                is[i] == is[j],
                                ys[i].to_bits() == ys[j].to_bits(),
                                "{dt} sub-block {g}: idx {} {} values {} {}",
                                is[i],
                                is[j],
                                ys[i],
                                ys[j]
                            );
                        }
                    }
                }
            }
        }
    }

    /// A tiny GGUF with one tensor of every block type the writer knows, an F32 tensor and
    /// metadata.
    fn tiny_gguf(dir: &Path, seed: u64) -> Vec<u8> {
        let mut r = rng(seed);
        let mut w = GgufWriter::new();
        w.set_metadata("general.architecture", GgufValue::String("llama".into()));
        w.set_metadata("general.name", GgufValue::String("tiny".into()));
        let mut datas = Vec::new();
        for dt in TYPES {
            if dt == DType::Q8_K {
                // No quantiser: random blocks with a finite scale.
                let mut b: Vec<u8> = (0..2 * dt.block_bytes())
                    .map(|_| r.random::<u8>())
                    .collect();
                for blk in b.chunks_exact_mut(dt.block_bytes()) {
                    blk[0..4].copy_from_slice(&0.01f32.to_le_bytes());
                }
                datas.push((dt, vec![2usize, 256], b));
                continue;
            }
            let x: Vec<f32> = (0..2 * 256)
                .map(|_| (r.random::<f32>() - 0.5) * 0.2)
                .collect();
            datas.push((dt, vec![2, 256], quantize(dt, &x).unwrap()));
        }
        for (i, (dt, shape, b)) in datas.iter().enumerate() {
            w.add_tensor(&format!("t{i}.{dt}"), *dt, shape, b.as_slice())
                .unwrap();
        }
        let f: Vec<u8> = (0..24u32)
            .flat_map(|i| (i as f32 * 0.25).to_le_bytes())
            .collect();
        w.add_tensor("norm", DType::F32, &[24], f.as_slice())
            .unwrap();
        let p = dir.join(format!("tiny{seed}.gguf"));
        w.write(&p).unwrap();
        std::fs::read(&p).unwrap()
    }

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("claimlab-entropy-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn tiny_gguf_of_every_type_round_trips() {
        let d = scratch("tiny");
        let g = tiny_gguf(&d, 3);
        let (c, entries, raw) = encode_gguf(&g).unwrap();
        assert_eq!(entries.len(), TYPES.len());
        assert!(raw > 24 * 4, "F32 tensor and header are raw: {raw}");
        assert_eq!(decode_container(&c).unwrap(), g);
        for e in &entries {
            assert!(e.index_entropy_bits <= e.index_entropy_mm_bits);
            assert!(e.index_coded_bytes > 0);
        }
        // Through the files and the report.
        let gp = d.join("tiny3.gguf");
        let cp = container_path(&gp);
        let rep = encode_file(&gp, &cp, None).unwrap();
        assert_eq!(rep.container_bytes, std::fs::metadata(&cp).unwrap().len());
        assert!(rep.tensors.iter().all(|e| e.rd.is_none()));
        let back = d.join("back.gguf");
        decode_file(&cp, &back).unwrap();
        assert_eq!(std::fs::read(&back).unwrap(), g);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_skewed_tensor_codes_below_its_gguf_size_near_its_entropy() {
        // Q8_0 of Gaussian weights: absmax blocks of 32 put the codes' spread near 127 / 2.1, so
        // about 7.7 bits of entropy per weight of the 8 stored.
        let mut r = rng(4);
        let x: Vec<f32> = (0..64 * 1024)
            .map(|_| {
                let (u, v) = (r.random::<f64>().max(1e-300), r.random::<f64>());
                ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
            })
            .collect();
        let q = quantize(DType::Q8_0, &x).unwrap();
        let t = TensorInfo {
            name: "w".into(),
            dtype: DType::Q8_0,
            shape: vec![64, 1024],
            role: Role::Other,
            param: claimlab_weights::Param::Weight,
            layer: None,
            offset: 0,
            nbytes: q.len() as u64,
        };
        let (sec, e) = code_tensor(&t, layout(DType::Q8_0).unwrap(), &q).unwrap();
        let n = x.len() as f64;
        let idx_bpw = 8.0 * e.index_coded_bytes as f64 / n;
        assert!(
            e.index_entropy_bits < 7.9 && e.index_entropy_bits > 7.0,
            "{}",
            e.index_entropy_bits
        );
        assert!(
            idx_bpw >= e.index_entropy_bits - 1e-3,
            "{idx_bpw} vs {}",
            e.index_entropy_bits
        );
        // Above the entropy by the frequency table (at most 4 bytes per distinct symbol plus
        // counts and the 4-byte state) and a fraction of a percent of frequency rounding.
        let table_bpw = 8.0 * (4.0 * e.distinct as f64 + 32.0) / n;
        assert!(
            idx_bpw <= e.index_entropy_bits * 1.002 + table_bpw,
            "{idx_bpw} vs {} + {table_bpw}",
            e.index_entropy_bits
        );
        assert!(
            (sec.len() as f64) < q.len() as f64 * 0.97,
            "{} vs {}",
            sec.len(),
            q.len()
        );
    }

    #[test]
    fn truncated_and_corrupted_containers_are_errors() {
        let d = scratch("fuzz");
        let g = tiny_gguf(&d, 5);
        let (c, _, _) = encode_gguf(&g).unwrap();
        let mut r = rng(6);
        // Every truncation point near the ends and a sample elsewhere.
        let mut cuts: Vec<usize> = (0..64.min(c.len())).collect();
        cuts.extend((c.len().saturating_sub(64))..c.len());
        cuts.extend((0..200).map(|_| r.random_range(0..c.len())));
        for cut in cuts {
            let e = decode_container(&c[..cut]).unwrap_err().to_string();
            assert!(e.starts_with("byte "), "cut {cut}: {e}");
        }
        // Bit flips anywhere: an error (CRCs cover every byte), never a panic or a wrong file.
        for _ in 0..500 {
            let mut bad = c.clone();
            let i = r.random_range(0..bad.len());
            bad[i] ^= 1 << r.random_range(0..8);
            let res = decode_container(&bad);
            assert!(res.is_err(), "flip at {i} went undetected");
        }
        // Random junk after a valid magic.
        for _ in 0..200 {
            let mut junk = MAGIC.to_vec();
            let len = r.random_range(0..200);
            junk.extend((0..len).map(|_| r.next_u32() as u8));
            assert!(decode_container(&junk).is_err());
        }
        let mut extra = c.clone();
        extra.push(0);
        assert!(decode_container(&extra)
            .unwrap_err()
            .to_string()
            .contains("trailing"));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn hostile_counts_are_rejected_before_allocating() {
        // A tensor section claiming 2^40 blocks.
        let d = scratch("hostile");
        let g = tiny_gguf(&d, 7);
        let (mut c, _, _) = encode_gguf(&g).unwrap();
        // Find the first tensor section: after the first raw section.
        let raw_len = u64::from_le_bytes(c[33..41].try_into().unwrap()) as usize;
        let t = HEADER_LEN + 1 + 8 + 4 + raw_len;
        assert_eq!(c[t], KIND_TENSOR);
        let name_len = u16::from_le_bytes([c[t + 1], c[t + 2]]) as usize;
        let nb = t + 3 + name_len + 4;
        c[nb..nb + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
        let head_end = nb + 8 + 2;
        let crc = crc32(&c[t..head_end]);
        c[head_end..head_end + 4].copy_from_slice(&crc.to_le_bytes());
        let e = decode_container(&c).unwrap_err().to_string();
        assert!(e.contains("exceed the original length"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn rd_bound_brackets_the_gaussian_rate() {
        let mut r = rng(8);
        let x: Vec<f32> = (0..50_000)
            .map(|_| {
                let (u, v) = (r.random::<f64>().max(1e-300), r.random::<f64>());
                ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
            })
            .collect();
        for d in [0.1, 0.01] {
            let b = rd_bound(&x, d).unwrap();
            let g = b.gaussian_upper_bits.unwrap();
            // Gaussian source: R(D) = ½ log₂(1/D) (up to the sample variance); the lower bound
            // sits below it, and within the loss of evaluating at D' = (√D + Δ)².
            assert!(b.ba_lower_bits <= g + 1e-9, "{b:?}");
            let at_dprime = 0.5 * (b.variance / b.ba_target_distortion).log2();
            assert!(b.ba_lower_bits > at_dprime - 0.1, "{b:?} vs {at_dprime}");
            assert!(b.ba_distortion >= b.ba_target_distortion);
        }
        assert!(rd_bound(&[1.0, 1.0], 0.1).is_err());
        // D = 0: R(0) of the empirical law is its entropy (two values at 1/4, 3/4).
        let b = rd_bound(&[0.5, 1.0, 1.0, 1.0], 0.0).unwrap();
        let h = -(0.25f64 * 0.25f64.log2() + 0.75 * 0.75f64.log2());
        assert!((b.ba_lower_bits - h).abs() < 1e-12, "{b:?}");
    }
}
