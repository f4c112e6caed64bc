//! Element types of stored tensors and their block geometry.

use serde::Serialize;

/// The storage type of a tensor's elements.
///
/// Plain types (`F32`, `F16`, `BF16`, `I64`) have one element per block; GGML quantised types pack
/// 32 (`Q4_0` .. `Q8_0`) or 256 (the K-quants) elements into a fixed-size block. `Other` carries a
/// GGML type id this crate cannot size; it never appears in a successfully opened model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[allow(non_camel_case_types)]
pub enum DType {
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary16.
    F16,
    /// bfloat16 (the top 16 bits of a binary32).
    BF16,
    /// Signed 64-bit integer (index buffers; skipped by the model reader).
    I64,
    /// GGML: 32 weights, one f16 scale, 4-bit codes offset by 8 (18 bytes).
    Q4_0,
    /// GGML: 32 weights, f16 scale and minimum, 4-bit codes (20 bytes).
    Q4_1,
    /// GGML: 32 weights, f16 scale, 5-bit codes offset by 16 (22 bytes).
    Q5_0,
    /// GGML: 32 weights, f16 scale and minimum, 5-bit codes (24 bytes).
    Q5_1,
    /// GGML: 32 weights, f16 scale, 8-bit signed codes (34 bytes).
    Q8_0,
    /// GGML K-quant: 256 weights, 2-bit codes, 4-bit sub-block scales and minima (84 bytes).
    Q2_K,
    /// GGML K-quant: 256 weights, 3-bit codes, 6-bit signed sub-block scales (110 bytes).
    Q3_K,
    /// GGML K-quant: 256 weights, 4-bit codes, 6-bit sub-block scales and minima (144 bytes).
    Q4_K,
    /// GGML K-quant: 256 weights, 5-bit codes, 6-bit sub-block scales and minima (176 bytes).
    Q5_K,
    /// GGML K-quant: 256 weights, 6-bit codes, 8-bit signed sub-block scales (210 bytes).
    Q6_K,
    /// GGML K-quant: 256 weights, f32 scale, 8-bit codes, block sums (292 bytes).
    Q8_K,
    /// A GGML type id this crate does not know.
    Other(u32),
}

impl DType {
    /// Elements per block (1 for plain types, 0 for `Other`).
    #[must_use]
    pub fn block_elems(&self) -> usize {
        match self {
            DType::F32 | DType::F16 | DType::BF16 | DType::I64 => 1,
            DType::Q4_0 | DType::Q4_1 | DType::Q5_0 | DType::Q5_1 | DType::Q8_0 => 32,
            DType::Q2_K | DType::Q3_K | DType::Q4_K | DType::Q5_K | DType::Q6_K | DType::Q8_K => {
                256
            }
            DType::Other(_) => 0,
        }
    }

    /// Bytes per block (0 for `Other`).
    #[must_use]
    pub fn block_bytes(&self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::I64 => 8,
            DType::Q4_0 => 18,
            DType::Q4_1 => 20,
            DType::Q5_0 => 22,
            DType::Q5_1 => 24,
            DType::Q8_0 => 34,
            DType::Q2_K => 84,
            DType::Q3_K => 110,
            DType::Q4_K => 144,
            DType::Q5_K => 176,
            DType::Q6_K => 210,
            DType::Q8_K => 292,
            DType::Other(_) => 0,
        }
    }

    /// The type's name as GGML and safetensors write it (`"F32"`, `"Q4_K"`, ...; `"other"` for
    /// unknown ids).
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::I64 => "I64",
            DType::Q4_0 => "Q4_0",
            DType::Q4_1 => "Q4_1",
            DType::Q5_0 => "Q5_0",
            DType::Q5_1 => "Q5_1",
            DType::Q8_0 => "Q8_0",
            DType::Q2_K => "Q2_K",
            DType::Q3_K => "Q3_K",
            DType::Q4_K => "Q4_K",
            DType::Q5_K => "Q5_K",
            DType::Q6_K => "Q6_K",
            DType::Q8_K => "Q8_K",
            DType::Other(_) => "other",
        }
    }

    /// Storage bits per element, including block scales and minima.
    #[must_use]
    pub fn bits_per_elem(&self) -> f64 {
        let e = self.block_elems();
        if e == 0 {
            return 0.0;
        }
        (self.block_bytes() * 8) as f64 / e as f64
    }

    /// The type for a GGML type id, `None` for ids this crate does not know.
    #[must_use]
    pub fn from_ggml_id(id: u32) -> Option<DType> {
        Some(match id {
            0 => DType::F32,
            1 => DType::F16,
            2 => DType::Q4_0,
            3 => DType::Q4_1,
            6 => DType::Q5_0,
            7 => DType::Q5_1,
            8 => DType::Q8_0,
            10 => DType::Q2_K,
            11 => DType::Q3_K,
            12 => DType::Q4_K,
            13 => DType::Q5_K,
            14 => DType::Q6_K,
            15 => DType::Q8_K,
            27 => DType::I64,
            30 => DType::BF16,
            _ => return None,
        })
    }

    /// The GGML type id (`None` for `Other`).
    #[must_use]
    pub fn ggml_id(&self) -> Option<u32> {
        Some(match self {
            DType::F32 => 0,
            DType::F16 => 1,
            DType::Q4_0 => 2,
            DType::Q4_1 => 3,
            DType::Q5_0 => 6,
            DType::Q5_1 => 7,
            DType::Q8_0 => 8,
            DType::Q2_K => 10,
            DType::Q3_K => 11,
            DType::Q4_K => 12,
            DType::Q5_K => 13,
            DType::Q6_K => 14,
            DType::Q8_K => 15,
            DType::I64 => 27,
            DType::BF16 => 30,
            DType::Other(_) => return None,
        })
    }

    /// Bytes needed to store `n_elems` elements, `None` when `n_elems` is not a whole number of
    /// blocks, the type is `Other`, or the count overflows.
    #[must_use]
    pub fn bytes_for(&self, n_elems: u64) -> Option<u64> {
        let e = self.block_elems() as u64;
        if e == 0 || !n_elems.is_multiple_of(e) {
            return None;
        }
        (n_elems / e).checked_mul(self.block_bytes() as u64)
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DType::Other(id) => write!(f, "ggml type {id}"),
            d => f.write_str(d.name()),
        }
    }
}
