//! A static rANS entropy coder (byte-wise renormalisation, 32-bit state) with a self-describing
//! header, and the empirical entropy of a symbol stream.

use crate::error::{invalid, Error, Result};
use crate::quant::entropy_of_counts;

/// Lower bound of the normalised state interval [L, 256 L).
const RANS_L: u32 = 1 << 23;
/// Most distinct symbols one stream may hold.
pub const MAX_DISTINCT_SYMBOLS: usize = 1 << 20;
/// Most symbols one stream may hold (bounds the work a corrupt header can ask of the decoder).
pub const MAX_STREAM_SYMBOLS: u64 = 1 << 31;

/// Empirical entropy of a symbol stream, in **bits per symbol** (0 for an empty stream).
///
/// ```text
/// Ĥ = −Σ_a (n_a / n) log₂(n_a / n)
/// ```
///
/// # Complexity
/// O(n log n) time (sorts a copy), O(n) memory.
///
/// # Example
/// ```
/// let h = claimlab_ratedist::empirical_entropy_bits(&[0, 1, 2, 2]);
/// assert!((h - 1.5).abs() < 1e-15);
/// ```
#[must_use]
pub fn empirical_entropy_bits(symbols: &[u32]) -> f64 {
    let counts = sorted_counts(symbols);
    let c: Vec<u64> = counts.iter().map(|&(_, c)| c).collect();
    entropy_of_counts(&c, symbols.len() as u64)
}

/// (symbol, count) pairs in ascending symbol order.
fn sorted_counts(symbols: &[u32]) -> Vec<(u32, u64)> {
    let mut s = symbols.to_vec();
    s.sort_unstable();
    let mut out: Vec<(u32, u64)> = Vec::new();
    for v in s {
        match out.last_mut() {
            Some((sym, c)) if *sym == v => *c += 1,
            _ => out.push((v, 1)),
        }
    }
    out
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos).ok_or(Error::CorruptStream {
            offset: *pos,
            reason: "truncated header",
        })?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(Error::CorruptStream {
        offset: *pos,
        reason: "varint too long",
    })
}

/// Quantised frequencies summing to 2^scale_bits, each ≥ 1.
fn normalise(counts: &[(u32, u64)], n: u64, scale_bits: u32) -> Vec<u32> {
    let m = 1u64 << scale_bits;
    let mut f: Vec<u64> = counts
        .iter()
        .map(|&(_, c)| ((c as u128 * m as u128 + n as u128 / 2) / n as u128).max(1) as u64)
        .collect();
    let sum: u64 = f.iter().sum();
    if sum < m {
        let big = (0..f.len())
            .max_by_key(|&i| (counts[i].1, usize::MAX - i))
            .unwrap_or(0);
        f[big] += m - sum;
    } else if sum > m {
        let mut excess = sum - m;
        let mut order: Vec<usize> = (0..f.len()).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(f[i]), i));
        while excess > 0 {
            for &i in &order {
                if excess == 0 {
                    break;
                }
                if f[i] > 1 {
                    let take = (f[i] - 1).min(excess).min((f[i] / 16).max(1));
                    f[i] -= take;
                    excess -= take;
                }
            }
        }
    }
    f.iter().map(|&v| v as u32).collect()
}

/// Encodes a symbol stream with static rANS into a self-contained byte stream.
///
/// Layout: varint n; if n > 0: varint scale_bits, varint k (distinct symbols), k pairs
/// (varint symbol gap, varint frequency − 1), then the 4-byte final state and the rANS payload.
/// Frequencies are the counts scaled to 2^scale_bits (scale_bits = max(16, ⌈log₂ k⌉ + 2),
/// every present symbol ≥ 1), so the payload is within about n·k/2^scale_bits·(1/ln 2) bits of
/// n·Ĥ plus 32 bits of final state; the header is the table's real cost.
///
/// # Errors
/// `InvalidParam` when the stream holds more than [`MAX_DISTINCT_SYMBOLS`] distinct symbols or
/// more than [`MAX_STREAM_SYMBOLS`] symbols.
///
/// # Complexity
/// O(n log n) (counting by sort) time, O(n) memory.
///
/// # References
/// J. Duda, "Asymmetric numeral systems", arXiv:0902.0271 (2009); F. Giesen, "Interleaved
/// entropy coders", arXiv:1402.3392 (2014), the byte-wise rANS variant.
///
/// # Example
/// ```
/// use claimlab_ratedist::{decode_symbols, encode_symbols};
/// let s = [3u32, 3, 3, 7, 3, 0, 3, 3];
/// let bytes = encode_symbols(&s).unwrap();
/// assert_eq!(decode_symbols(&bytes).unwrap(), s);
/// ```
pub fn encode_symbols(symbols: &[u32]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let n = symbols.len() as u64;
    if n > MAX_STREAM_SYMBOLS {
        return Err(invalid("symbols", n, "stream longer than 2^31 symbols"));
    }
    put_varint(&mut out, n);
    if n == 0 {
        return Ok(out);
    }
    let counts = sorted_counts(symbols);
    let k = counts.len();
    if k > MAX_DISTINCT_SYMBOLS {
        return Err(invalid(
            "symbols",
            k,
            "too many distinct symbols (max 2^20)",
        ));
    }
    let log_k = usize::BITS - (k.max(2) - 1).leading_zeros();
    let scale_bits = (log_k + 2).max(16);
    let freqs = normalise(&counts, n, scale_bits);
    put_varint(&mut out, u64::from(scale_bits));
    put_varint(&mut out, k as u64);
    let mut prev: Option<u32> = None;
    for (&(sym, _), &f) in counts.iter().zip(&freqs) {
        let gap = match prev {
            None => u64::from(sym),
            Some(p) => u64::from(sym - p - 1),
        };
        put_varint(&mut out, gap);
        put_varint(&mut out, u64::from(f - 1));
        prev = Some(sym);
    }
    // Cumulative frequencies, looked up by symbol through binary search on the sorted table.
    let mut cum = Vec::with_capacity(k);
    let mut acc = 0u32;
    for &f in &freqs {
        cum.push(acc);
        acc += f;
    }
    let syms: Vec<u32> = counts.iter().map(|&(s, _)| s).collect();
    let mut rev = Vec::with_capacity(symbols.len() / 2 + 8);
    let mut x: u32 = RANS_L;
    for &s in symbols.iter().rev() {
        let i = syms.binary_search(&s).unwrap_or(0);
        let (f, c) = (freqs[i], cum[i]);
        let x_max = u64::from((RANS_L >> scale_bits) << 8) * u64::from(f);
        while u64::from(x) >= x_max {
            rev.push(x as u8);
            x >>= 8;
        }
        x = ((x / f) << scale_bits) + (x % f) + c;
    }
    rev.extend_from_slice(&x.to_le_bytes());
    out.extend(rev.iter().rev());
    Ok(out)
}

/// Decodes a stream written by [`encode_symbols`], bit-exactly.
///
/// # Errors
/// [`Error::CorruptStream`] for truncated or inconsistent input (bad table, frequencies not
/// summing to 2^scale_bits, leftover bytes, final state mismatch); never panics on bad bytes.
///
/// # Complexity
/// O(n log k) time, O(n + k) memory.
///
/// # Example
/// ```
/// let bytes = claimlab_ratedist::encode_symbols(&[]).unwrap();
/// assert!(claimlab_ratedist::decode_symbols(&bytes).unwrap().is_empty());
/// ```
pub fn decode_symbols(bytes: &[u8]) -> Result<Vec<u32>> {
    let corrupt = |offset: usize, reason: &'static str| Error::CorruptStream { offset, reason };
    let mut pos = 0;
    let n = get_varint(bytes, &mut pos)?;
    if n > MAX_STREAM_SYMBOLS {
        return Err(corrupt(pos, "symbol count too large"));
    }
    if n == 0 {
        return if pos == bytes.len() {
            Ok(Vec::new())
        } else {
            Err(corrupt(pos, "trailing bytes"))
        };
    }
    let scale_bits = get_varint(bytes, &mut pos)?;
    if !(1..=22).contains(&scale_bits) {
        return Err(corrupt(pos, "bad scale"));
    }
    let scale_bits = scale_bits as u32;
    let m = 1u64 << scale_bits;
    let k = get_varint(bytes, &mut pos)?;
    if k == 0 || k > MAX_DISTINCT_SYMBOLS as u64 || k > m {
        return Err(corrupt(pos, "bad alphabet size"));
    }
    let k = k as usize;
    let mut syms = Vec::with_capacity(k);
    let mut freqs = Vec::with_capacity(k);
    let mut cum = Vec::with_capacity(k + 1);
    let mut next: u64 = 0;
    let mut total: u64 = 0;
    for _ in 0..k {
        let gap = get_varint(bytes, &mut pos)?;
        let sym = next
            .checked_add(gap)
            .filter(|&s| s <= u64::from(u32::MAX))
            .ok_or(corrupt(pos, "symbol out of range"))?;
        let f = get_varint(bytes, &mut pos)?
            .checked_add(1)
            .filter(|&f| f <= m)
            .ok_or(corrupt(pos, "bad frequency"))?;
        syms.push(sym as u32);
        freqs.push(f as u32);
        cum.push(total as u32);
        total += f;
        if total > m {
            return Err(corrupt(pos, "frequencies exceed the scale"));
        }
        next = sym + 1;
    }
    if total != m {
        return Err(corrupt(pos, "frequencies do not sum to the scale"));
    }
    let state = bytes
        .get(pos..pos + 4)
        .ok_or(corrupt(pos, "truncated state"))?;
    let mut x = u32::from_be_bytes([state[0], state[1], state[2], state[3]]);
    pos += 4;
    if !(RANS_L..RANS_L << 8).contains(&x) {
        return Err(corrupt(pos, "bad initial state"));
    }
    let mut out = Vec::with_capacity(n.min(1 << 24) as usize);
    let mask = (m - 1) as u32;
    for _ in 0..n {
        let slot = x & mask;
        let i = cum.partition_point(|&c| c <= slot) - 1;
        out.push(syms[i]);
        x = freqs[i] * (x >> scale_bits) + slot - cum[i];
        while x < RANS_L {
            let b = *bytes.get(pos).ok_or(corrupt(pos, "truncated payload"))?;
            pos += 1;
            x = (x << 8) | u32::from(b);
        }
    }
    if pos != bytes.len() {
        return Err(corrupt(pos, "trailing bytes"));
    }
    if x != RANS_L {
        return Err(corrupt(pos, "final state mismatch"));
    }
    Ok(out)
}

/// Real coded size of a symbol stream beside its empirical entropy.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CodedSize {
    /// Number of symbols.
    pub symbols: usize,
    /// Distinct symbols.
    pub distinct: usize,
    /// Total bytes of the self-contained stream from [`encode_symbols`].
    pub total_bytes: usize,
    /// Bytes of the header (count, scale, frequency table).
    pub header_bytes: usize,
    /// `8 · total_bytes / n`: real bits per symbol, header included (0 for an empty stream).
    pub bits_per_symbol: f64,
    /// Empirical entropy Ĥ in bits per symbol: the ideal payload, no header.
    pub entropy_bits_per_symbol: f64,
}

/// Encodes `symbols`, decodes them back, checks the round trip, and reports the real size next
/// to the empirical entropy.
///
/// # Errors
/// As [`encode_symbols`]; an internal round-trip failure would be reported as
/// [`Error::CorruptStream`].
///
/// # Example
/// ```
/// let s: Vec<u32> = (0..10_000).map(|i| (i % 4 == 0) as u32).collect();
/// let r = claimlab_ratedist::coded_size(&s).unwrap();
/// // Header and final state cost about 0.01 bits per symbol at n = 10⁴.
/// assert!(r.bits_per_symbol < r.entropy_bits_per_symbol + 0.02);
/// ```
pub fn coded_size(symbols: &[u32]) -> Result<CodedSize> {
    let bytes = encode_symbols(symbols)?;
    let back = decode_symbols(&bytes)?;
    if back != symbols {
        return Err(Error::CorruptStream {
            offset: 0,
            reason: "round trip mismatch",
        });
    }
    let counts = sorted_counts(symbols);
    let header_bytes = if symbols.is_empty() {
        bytes.len()
    } else {
        // Everything before the 4-byte state.
        let mut pos = 0;
        for _ in 0..3 {
            get_varint(&bytes, &mut pos)?;
        }
        for _ in 0..2 * counts.len() {
            get_varint(&bytes, &mut pos)?;
        }
        pos
    };
    let n = symbols.len();
    Ok(CodedSize {
        symbols: n,
        distinct: counts.len(),
        total_bytes: bytes.len(),
        header_bytes,
        bits_per_symbol: if n == 0 {
            0.0
        } else {
            8.0 * bytes.len() as f64 / n as f64
        },
        entropy_bits_per_symbol: empirical_entropy_bits(symbols),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimlab_testkit::rand::RngExt;
    use claimlab_testkit::rng;

    fn round_trip(s: &[u32]) -> Vec<u8> {
        let b = encode_symbols(s).unwrap();
        assert_eq!(decode_symbols(&b).unwrap(), s);
        b
    }

    #[test]
    fn round_trips_random_and_adversarial() {
        let mut r = rng(1);
        for &(n, alpha) in &[
            (1usize, 1u32),
            (10, 2),
            (1000, 3),
            (5000, 256),
            (20_000, 70_000),
        ] {
            let s: Vec<u32> = (0..n).map(|_| r.random_range(0..alpha)).collect();
            round_trip(&s);
        }
        // Skewed (geometric) source.
        let s: Vec<u32> = (0..50_000)
            .map(|_| {
                let mut k = 0;
                while r.random::<f64>() < 0.7 {
                    k += 1;
                }
                k
            })
            .collect();
        round_trip(&s);
        round_trip(&[]);
        // All one symbol: the payload is empty apart from the state.
        let b = round_trip(&[u32::MAX; 100_000]);
        assert!(b.len() < 20, "{}", b.len());
        // Extremes of the symbol range and a rare symbol inside a long run.
        let mut s = vec![0u32; 10_000];
        s[5000] = u32::MAX;
        round_trip(&s);
        // The largest alphabet: every symbol distinct.
        let s: Vec<u32> = (0..MAX_DISTINCT_SYMBOLS as u32).rev().collect();
        round_trip(&s);
        let too_many: Vec<u32> = (0..=MAX_DISTINCT_SYMBOLS as u32).collect();
        assert!(matches!(
            encode_symbols(&too_many),
            Err(Error::InvalidParam {
                name: "symbols",
                ..
            })
        ));
    }

    #[test]
    fn size_is_close_to_entropy() {
        // iid source with 8 symbols, n = 10⁵: payload ≤ nĤ + small overhead from frequency
        // quantisation (≤ 0.1% here) and 32 bits of state.
        let mut r = rng(7);
        let probs = [0.4, 0.2, 0.15, 0.1, 0.08, 0.04, 0.02, 0.01];
        let s: Vec<u32> = (0..100_000)
            .map(|_| {
                let mut u = r.random::<f64>();
                let mut k = 0;
                while k < 7 && u >= probs[k] {
                    u -= probs[k];
                    k += 1;
                }
                k as u32
            })
            .collect();
        let c = coded_size(&s).unwrap();
        let payload_bits = 8.0 * (c.total_bytes - c.header_bytes) as f64;
        let ideal = c.entropy_bits_per_symbol * s.len() as f64;
        assert!(payload_bits >= ideal - 64.0, "{payload_bits} vs {ideal}");
        assert!(
            payload_bits <= ideal * 1.001 + 64.0,
            "{payload_bits} vs {ideal}"
        );
        assert!(c.header_bytes < 40);
        assert_eq!(c.distinct, 8);
    }

    #[test]
    fn corrupt_streams_are_errors_not_panics() {
        let mut r = rng(3);
        let s: Vec<u32> = (0..2000).map(|_| r.random_range(0..20)).collect();
        let good = encode_symbols(&s).unwrap();
        for cut in 0..good.len() {
            assert!(decode_symbols(&good[..cut]).is_err(), "cut {cut}");
        }
        let mut extra = good.clone();
        extra.push(0);
        assert!(matches!(
            decode_symbols(&extra),
            Err(Error::CorruptStream { .. })
        ));
        // Random byte flips: decoding must not panic (it may or may not detect the change).
        for t in 0..2000 {
            let mut bad = good.clone();
            let i = r.random_range(0..bad.len());
            bad[i] ^= 1 << (t % 8);
            let _ = decode_symbols(&bad);
        }
        for _ in 0..2000 {
            let len = r.random_range(0..64);
            let junk: Vec<u8> = (0..len).map(|_| r.random::<u8>()).collect();
            let _ = decode_symbols(&junk);
        }
    }

    #[test]
    fn entropy_helper() {
        assert!(empirical_entropy_bits(&[]).abs() < 1e-300);
        assert!(empirical_entropy_bits(&[5; 10]).abs() < 1e-300);
        let s: Vec<u32> = (0..1024).map(|i| i % 8).collect();
        assert!((empirical_entropy_bits(&s) - 3.0).abs() < 1e-12);
    }
}
