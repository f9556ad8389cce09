//! Output comparison for validation: how far a reloaded model's outputs are from the reference.
//!
//! [`compare`] walks two tensors of the same dtype and shape once and reports the largest absolute
//! and relative differences, where the largest one is, NaN/Inf disagreements and whether the
//! outputs pass `numpy.allclose`-style tolerances. Every dtype is widened to `f64` (integers are
//! compared exactly as integers first). Large tensors are split into fixed-size chunks that rayon
//! processes in parallel; the per-chunk results are combined in chunk order, and small tensors go
//! through the very same chunks serially, so the result never depends on the thread count.

use std::fmt;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tensor::{byte_size, DType, Tensor, TensorData};

/// Tensors with at least this many elements are compared on several threads.
pub const PARALLEL_THRESHOLD: usize = 1 << 20;
/// Elements per chunk; fixed so that serial and parallel runs sum in the same order.
const CHUNK: usize = 1 << 16;

/// `numpy.allclose` tolerances: an element passes when `|actual - expected| <= atol + rtol * |expected|`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tolerance {
    /// Absolute tolerance.
    #[serde(with = "nonfinite")]
    pub atol: f64,
    /// Relative tolerance, scaled by `|expected|`.
    #[serde(with = "nonfinite")]
    pub rtol: f64,
}

impl Tolerance {
    /// Exact equality (the default for integer and bool dtypes).
    pub const EXACT: Tolerance = Tolerance {
        atol: 0.0,
        rtol: 0.0,
    };

    /// Default tolerances by dtype: float32 `atol 1e-6` (the tutorial's `max_abs_diff < 1e-6`),
    /// float64 `atol 1e-12`, float16 `atol = rtol = 1e-3`, bfloat16 `atol = rtol = 1e-2`; every
    /// other dtype (integers, bool) is compared exactly.
    pub fn for_dtype(dtype: DType) -> Tolerance {
        match dtype {
            DType::F32 => Tolerance {
                atol: 1e-6,
                rtol: 0.0,
            },
            DType::F64 => Tolerance {
                atol: 1e-12,
                rtol: 0.0,
            },
            DType::F16 => Tolerance {
                atol: 1e-3,
                rtol: 1e-3,
            },
            DType::BF16 => Tolerance {
                atol: 1e-2,
                rtol: 1e-2,
            },
            _ => Tolerance::EXACT,
        }
    }

    fn check(self) -> Result<()> {
        for (what, v) in [("atol", self.atol), ("rtol", self.rtol)] {
            if v.is_nan() || v < 0.0 {
                return Err(Error::invalid(format!(
                    "tolerance {what} must be a non-negative number, got {v}"
                )));
            }
        }
        Ok(())
    }
}

/// The result of comparing one actual tensor with its expected value.
///
/// Per element (both values widened to `f64`):
/// - both NaN, or both the same infinity: equal (difference 0);
/// - NaN in exactly one of them: a *NaN mismatch*;
/// - otherwise an infinity in either that the other does not equal (`+inf` vs `-inf`, or an
///   infinity vs a finite value): an *Inf mismatch*;
/// - otherwise both finite: `d = |actual - expected|` and `d / max(|expected|, tiny)`, where
///   `tiny` is the dtype's smallest normal value (1 for integers).
///
/// The diff statistics cover the elements that are not NaN/Inf mismatches; mismatches always
/// count as exceeding the tolerance. Non-finite numbers serialize as the strings `"inf"`,
/// `"-inf"` and `"nan"` so that JSON round trips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The dtype name both tensors share (`"float32"`…).
    pub dtype: String,
    /// The shape both tensors share.
    pub shape: Vec<u64>,
    /// Number of elements compared.
    pub num_elements: u64,
    /// The tolerance applied.
    pub tolerance: Tolerance,
    /// Largest `|actual - expected|`.
    #[serde(with = "nonfinite")]
    pub max_abs_diff: f64,
    /// Largest `|actual - expected| / max(|expected|, tiny)`.
    #[serde(with = "nonfinite")]
    pub max_rel_diff: f64,
    /// Mean of `|actual - expected|` over the elements that are not NaN/Inf mismatches.
    #[serde(with = "nonfinite")]
    pub mean_abs_diff: f64,
    /// Row-major flat index of the (first) element with the largest absolute difference;
    /// `None` when no element differs by a finite nonzero amount.
    pub worst_index: Option<u64>,
    /// `worst_index` as one index per dimension (empty for scalars).
    pub worst_multi_index: Option<Vec<u64>>,
    /// Expected value at `worst_index`.
    pub worst_expected: Option<f64>,
    /// Actual value at `worst_index`.
    pub worst_actual: Option<f64>,
    /// Positions where exactly one of the two values is NaN.
    pub nan_mismatches: u64,
    /// Positions where an infinity meets a different value (`+inf` vs `-inf` or vs a finite value).
    pub inf_mismatches: u64,
    /// Flat index of the first NaN or Inf mismatch.
    pub first_nonfinite_mismatch: Option<u64>,
    /// Elements beyond tolerance, NaN/Inf mismatches included.
    pub num_exceeding: u64,
    /// Whether every element is within tolerance (`numpy.allclose(actual, expected, rtol, atol,
    /// equal_nan=True)` for NaNs at the same position).
    pub passed: bool,
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:?}: {} ({} of {} elements beyond atol={} rtol={}); max_abs_diff={:e}, \
             max_rel_diff={:e}, mean_abs_diff={:e}",
            self.dtype,
            self.shape,
            if self.passed { "passed" } else { "FAILED" },
            self.num_exceeding,
            self.num_elements,
            self.tolerance.atol,
            self.tolerance.rtol,
            self.max_abs_diff,
            self.max_rel_diff,
            self.mean_abs_diff,
        )?;
        if let (Some(idx), Some(e), Some(a)) = (
            &self.worst_multi_index,
            self.worst_expected,
            self.worst_actual,
        ) {
            write!(f, " at {idx:?} (expected {e}, actual {a})")?;
        }
        if self.nan_mismatches > 0 {
            write!(f, "; {} NaN mismatches", self.nan_mismatches)?;
        }
        if self.inf_mismatches > 0 {
            write!(f, "; {} Inf mismatches", self.inf_mismatches)?;
        }
        if let Some(i) = self.first_nonfinite_mismatch {
            write!(f, " (first at flat index {i})")?;
        }
        Ok(())
    }
}

/// One named output of [`compare_many`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedComparison {
    /// The output's name.
    pub name: String,
    /// Its comparison.
    pub comparison: Comparison,
}

/// The comparisons of several outputs, in the order given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparisons {
    /// Per-output results.
    pub outputs: Vec<NamedComparison>,
    /// Whether every output passed.
    pub passed: bool,
}

impl Comparisons {
    /// `Ok(self)` when every output passed, else [`Error::Validation`] summarising each failure.
    pub fn into_result(self) -> Result<Self> {
        if self.passed {
            return Ok(self);
        }
        let failed: Vec<String> = self
            .outputs
            .iter()
            .filter(|o| !o.comparison.passed)
            .map(|o| format!("{}: {}", o.name, o.comparison))
            .collect();
        Err(Error::Validation {
            msg: format!(
                "{} of {} outputs differ beyond tolerance:\n  {}",
                failed.len(),
                self.outputs.len(),
                failed.join("\n  ")
            ),
        })
    }
}

impl Comparison {
    /// `Ok(self)` when it passed, else [`Error::Validation`] with the summary.
    pub fn into_result(self) -> Result<Self> {
        if self.passed {
            Ok(self)
        } else {
            Err(Error::Validation {
                msg: format!("outputs differ beyond tolerance: {self}"),
            })
        }
    }
}

/// Compare `actual` with `expected` (same dtype and shape) under `tol`.
///
/// Supported dtypes: float16, bfloat16, float32, float64, all integer widths and bool (nonzero
/// bytes are `true`). Strings, complex and float8 tensors, mismatched shapes or dtypes, bytes that
/// do not match the shape and negative/NaN tolerances are [`Error::InvalidArgument`]s.
pub fn compare(expected: &Tensor<'_>, actual: &Tensor<'_>, tol: Tolerance) -> Result<Comparison> {
    compare_impl(expected, actual, tol, None)
}

/// Compare several named outputs; `tol: None` uses [`Tolerance::for_dtype`] for each output.
/// Names must be distinct. Errors name the output they concern.
pub fn compare_many(
    outputs: &[(&str, &Tensor<'_>, &Tensor<'_>)],
    tol: Option<Tolerance>,
) -> Result<Comparisons> {
    let mut names: Vec<&str> = outputs.iter().map(|(n, _, _)| *n).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::invalid(format!(
            "output name {:?} given twice",
            w[0]
        )));
    }
    let results = outputs
        .par_iter()
        .map(|(name, e, a)| {
            let t = tol.unwrap_or_else(|| Tolerance::for_dtype(e.dtype));
            compare(e, a, t)
                .map(|comparison| NamedComparison {
                    name: (*name).to_string(),
                    comparison,
                })
                .map_err(|err| match err {
                    Error::InvalidArgument { msg } => {
                        Error::invalid(format!("output {name:?}: {msg}"))
                    }
                    other => other,
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let passed = results.iter().all(|r| r.comparison.passed);
    Ok(Comparisons {
        outputs: results,
        passed,
    })
}

/// Decoded element values: floats widened to f64, integers widened to i128 (exact).
#[derive(Clone, Copy)]
enum Kind {
    Float { tiny: f64, decode: fn(&[u8]) -> f64 },
    Int { decode: fn(&[u8]) -> i128 },
}

fn kind(dtype: DType) -> Option<Kind> {
    fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(&b[..N]);
        a
    }
    Some(match dtype {
        DType::F16 => Kind::Float {
            tiny: 6.103_515_625e-5,
            decode: |b| f16_to_f64(u16::from_le_bytes(arr(b))),
        },
        DType::BF16 => Kind::Float {
            tiny: f32::MIN_POSITIVE as f64,
            decode: |b| bf16_to_f64(u16::from_le_bytes(arr(b))),
        },
        DType::F32 => Kind::Float {
            tiny: f32::MIN_POSITIVE as f64,
            decode: |b| f32::from_le_bytes(arr(b)) as f64,
        },
        DType::F64 => Kind::Float {
            tiny: f64::MIN_POSITIVE,
            decode: |b| f64::from_le_bytes(arr(b)),
        },
        DType::Bool => Kind::Int {
            decode: |b| i128::from(b[0] != 0),
        },
        DType::U8 => Kind::Int {
            decode: |b| i128::from(b[0]),
        },
        DType::I8 => Kind::Int {
            decode: |b| i128::from(b[0] as i8),
        },
        DType::U16 => Kind::Int {
            decode: |b| i128::from(u16::from_le_bytes(arr(b))),
        },
        DType::I16 => Kind::Int {
            decode: |b| i128::from(i16::from_le_bytes(arr(b))),
        },
        DType::U32 => Kind::Int {
            decode: |b| i128::from(u32::from_le_bytes(arr(b))),
        },
        DType::I32 => Kind::Int {
            decode: |b| i128::from(i32::from_le_bytes(arr(b))),
        },
        DType::U64 => Kind::Int {
            decode: |b| i128::from(u64::from_le_bytes(arr(b))),
        },
        DType::I64 => Kind::Int {
            decode: |b| i128::from(i64::from_le_bytes(arr(b))),
        },
        _ => return None,
    })
}

/// IEEE 754 binary16 → f64, decoded by hand (subnormals, infinities and NaNs included).
pub fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let man = f64::from(h & 0x3ff);
    match exp {
        0 => sign * man * (2.0f64).powi(-24),
        0x1f if man == 0.0 => sign * f64::INFINITY,
        0x1f => f64::NAN,
        _ => sign * (1.0 + man / 1024.0) * (2.0f64).powi(exp - 15),
    }
}

/// bfloat16 (the upper 16 bits of an f32) → f64.
pub fn bf16_to_f64(h: u16) -> f64 {
    f32::from_bits(u32::from(h) << 16) as f64
}

/// Per-chunk partial results; combined left to right in chunk order.
#[derive(Clone, Copy)]
struct Acc {
    comparable: u64,
    sum_abs: f64,
    max_abs: f64,
    worst: Option<(u64, f64, f64)>,
    max_rel: f64,
    nan_mm: u64,
    inf_mm: u64,
    first_nonfinite: Option<u64>,
    exceeding: u64,
}

impl Acc {
    const EMPTY: Acc = Acc {
        comparable: 0,
        sum_abs: 0.0,
        max_abs: 0.0,
        worst: None,
        max_rel: 0.0,
        nan_mm: 0,
        inf_mm: 0,
        first_nonfinite: None,
        exceeding: 0,
    };

    /// `self` covers earlier elements than `later`; ties keep the earlier index.
    fn merge(mut self, later: Acc) -> Acc {
        self.comparable += later.comparable;
        self.sum_abs += later.sum_abs;
        if later.max_abs > self.max_abs {
            self.max_abs = later.max_abs;
            self.worst = later.worst;
        }
        if later.max_rel > self.max_rel {
            self.max_rel = later.max_rel;
        }
        self.nan_mm += later.nan_mm;
        self.inf_mm += later.inf_mm;
        self.first_nonfinite = self.first_nonfinite.or(later.first_nonfinite);
        self.exceeding += later.exceeding;
        self
    }

    #[inline]
    fn finite(&mut self, idx: u64, e: f64, a: f64, d: f64, rel: f64, exceeds: bool) {
        self.comparable += 1;
        self.sum_abs += d;
        if d > self.max_abs {
            self.max_abs = d;
            self.worst = Some((idx, e, a));
        }
        if rel > self.max_rel {
            self.max_rel = rel;
        }
        self.exceeding += u64::from(exceeds);
    }

    #[inline]
    fn nonfinite_mismatch(&mut self, idx: u64, nan: bool) {
        if nan {
            self.nan_mm += 1;
        } else {
            self.inf_mm += 1;
        }
        self.first_nonfinite.get_or_insert(idx);
        self.exceeding += 1;
    }
}

/// `d <= bound`, false when `bound` is NaN (`inf * 0` from an infinite rtol), as numpy does.
#[inline]
fn within(d: f64, bound: f64) -> bool {
    matches!(
        d.partial_cmp(&bound),
        Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
    )
}

fn float_chunk(
    e: &[u8],
    a: &[u8],
    size: usize,
    first: u64,
    tiny: f64,
    tol: Tolerance,
    decode: fn(&[u8]) -> f64,
) -> Acc {
    let mut acc = Acc::EMPTY;
    for (i, (eb, ab)) in e.chunks_exact(size).zip(a.chunks_exact(size)).enumerate() {
        let idx = first + i as u64;
        let (ev, av) = (decode(eb), decode(ab));
        if ev.is_nan() || av.is_nan() {
            if ev.is_nan() && av.is_nan() {
                acc.finite(idx, ev, av, 0.0, 0.0, false);
            } else {
                acc.nonfinite_mismatch(idx, true);
            }
        } else if ev.is_infinite() || av.is_infinite() {
            if ev == av {
                acc.finite(idx, ev, av, 0.0, 0.0, false);
            } else {
                acc.nonfinite_mismatch(idx, false);
            }
        } else {
            let d = (av - ev).abs();
            let scale = ev.abs();
            let rel = d / scale.max(tiny);
            let exceeds = !within(d, tol.atol + tol.rtol * scale);
            acc.finite(idx, ev, av, d, rel, exceeds);
        }
    }
    acc
}

fn int_chunk(
    e: &[u8],
    a: &[u8],
    size: usize,
    first: u64,
    tol: Tolerance,
    decode: fn(&[u8]) -> i128,
) -> Acc {
    let mut acc = Acc::EMPTY;
    for (i, (eb, ab)) in e.chunks_exact(size).zip(a.chunks_exact(size)).enumerate() {
        let idx = first + i as u64;
        let (ev, av) = (decode(eb), decode(ab));
        // i128 holds any difference of two 64-bit integers exactly.
        let diff = (av - ev).unsigned_abs();
        let d = diff as f64;
        let scale = ev.unsigned_abs() as f64;
        let rel = d / scale.max(1.0);
        let exceeds = diff != 0 && !within(d, tol.atol + tol.rtol * scale);
        acc.finite(idx, ev as f64, av as f64, d, rel, exceeds);
    }
    acc
}

fn bytes_of<'t>(t: &'t Tensor<'_>, role: &str) -> Result<&'t [u8]> {
    match &t.data {
        TensorData::Bytes(b) => {
            let want = byte_size(t.dtype, &t.shape)?;
            if want != b.len() as u64 {
                return Err(Error::invalid(format!(
                    "{role} {} tensor of shape {:?} needs {want} bytes, got {}",
                    t.dtype.name(),
                    t.shape,
                    b.len()
                )));
            }
            Ok(b)
        }
        TensorData::Strings(_) => Err(Error::invalid(
            "string tensors cannot be compared numerically",
        )),
    }
}

/// Row-major multi-dimensional index of `flat` in `shape`.
fn unravel(mut flat: u64, shape: &[u64]) -> Vec<u64> {
    let mut idx = vec![0u64; shape.len()];
    for (slot, &dim) in idx.iter_mut().zip(shape).rev() {
        if dim > 0 {
            *slot = flat % dim;
            flat /= dim;
        }
    }
    idx
}

/// `parallel: None` decides by size; tests force either way.
fn compare_impl(
    expected: &Tensor<'_>,
    actual: &Tensor<'_>,
    tol: Tolerance,
    parallel: Option<bool>,
) -> Result<Comparison> {
    if expected.dtype != actual.dtype {
        return Err(Error::invalid(format!(
            "dtype mismatch: expected {}, actual {}",
            expected.dtype.name(),
            actual.dtype.name()
        )));
    }
    if expected.shape != actual.shape {
        return Err(Error::invalid(format!(
            "shape mismatch: expected {:?}, actual {:?}",
            expected.shape, actual.shape
        )));
    }
    tol.check()?;
    let dtype = expected.dtype;
    let k = kind(dtype).ok_or_else(|| {
        Error::invalid(format!(
            "comparing {} tensors is not supported",
            dtype.name()
        ))
    })?;
    let e = bytes_of(expected, "expected")?;
    let a = bytes_of(actual, "actual")?;
    // `kind` only knows fixed-size dtypes.
    let size = dtype.size().unwrap_or(1);
    let n = e.len() / size;
    let chunk_bytes = CHUNK * size;
    let run = |(ci, (ec, ac)): (usize, (&[u8], &[u8]))| {
        let first = (ci * CHUNK) as u64;
        match k {
            Kind::Float { tiny, decode } => float_chunk(ec, ac, size, first, tiny, tol, decode),
            Kind::Int { decode } => int_chunk(ec, ac, size, first, tol, decode),
        }
    };
    let parallel = parallel.unwrap_or(n >= PARALLEL_THRESHOLD);
    let acc = if parallel {
        let parts: Vec<Acc> = e
            .par_chunks(chunk_bytes)
            .zip(a.par_chunks(chunk_bytes))
            .enumerate()
            .map(run)
            .collect();
        parts.into_iter().fold(Acc::EMPTY, Acc::merge)
    } else {
        e.chunks(chunk_bytes)
            .zip(a.chunks(chunk_bytes))
            .enumerate()
            .map(run)
            .fold(Acc::EMPTY, Acc::merge)
    };
    Ok(Comparison {
        dtype: dtype.name().to_string(),
        shape: expected.shape.clone(),
        num_elements: n as u64,
        tolerance: tol,
        max_abs_diff: acc.max_abs,
        max_rel_diff: acc.max_rel,
        mean_abs_diff: if acc.comparable == 0 {
            0.0
        } else {
            acc.sum_abs / acc.comparable as f64
        },
        worst_index: acc.worst.map(|w| w.0),
        worst_multi_index: acc.worst.map(|w| unravel(w.0, &expected.shape)),
        worst_expected: acc.worst.map(|w| w.1),
        worst_actual: acc.worst.map(|w| w.2),
        nan_mismatches: acc.nan_mm,
        inf_mismatches: acc.inf_mm,
        first_nonfinite_mismatch: acc.first_nonfinite,
        num_exceeding: acc.exceeding,
        passed: acc.exceeding == 0,
    })
}

/// Serde for f64 values that may be non-finite: finite values are numbers, the others the
/// strings `"inf"`, `"-inf"`, `"nan"` (JSON has no number for them).
mod nonfinite {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else if v.is_nan() {
            s.serialize_str("nan")
        } else if *v > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Num(f64),
        Str(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Num(v) => Ok(v),
            Repr::Str(s) => match s.as_str() {
                "nan" | "NaN" => Ok(f64::NAN),
                "inf" | "Infinity" => Ok(f64::INFINITY),
                "-inf" | "-Infinity" => Ok(f64::NEG_INFINITY),
                _ => Err(serde::de::Error::custom(format!(
                    "expected a number, \"inf\", \"-inf\" or \"nan\", got {s:?}"
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn t(dtype: DType, shape: &[u64], bytes: Vec<u8>) -> Tensor<'static> {
        Tensor {
            dtype,
            shape: shape.to_vec(),
            data: TensorData::Bytes(Cow::Owned(bytes)),
        }
    }

    fn f32s(shape: &[u64], v: &[f32]) -> Tensor<'static> {
        t(
            DType::F32,
            shape,
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        )
    }

    fn f64s(shape: &[u64], v: &[f64]) -> Tensor<'static> {
        t(
            DType::F64,
            shape,
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        )
    }

    fn u16s(dtype: DType, shape: &[u64], v: &[u16]) -> Tensor<'static> {
        t(
            dtype,
            shape,
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        )
    }

    #[test]
    fn f16_decoding_known_values() {
        assert_eq!(f16_to_f64(0x3c00), 1.0);
        assert_eq!(f16_to_f64(0xc000), -2.0);
        assert_eq!(f16_to_f64(0x3555), 0.333251953125);
        assert_eq!(f16_to_f64(0x7bff), 65504.0);
        assert_eq!(f16_to_f64(0x0400), 6.103515625e-5); // smallest normal
        assert_eq!(f16_to_f64(0x0001), 5.960464477539063e-8); // smallest subnormal
        assert_eq!(f16_to_f64(0x8000), 0.0);
        assert!(f16_to_f64(0x8000).is_sign_negative());
        assert_eq!(f16_to_f64(0x7c00), f64::INFINITY);
        assert_eq!(f16_to_f64(0xfc00), f64::NEG_INFINITY);
        assert!(f16_to_f64(0x7e00).is_nan());
        assert!(f16_to_f64(0xfc01).is_nan());
    }

    #[test]
    fn bf16_decoding_known_values() {
        assert_eq!(bf16_to_f64(0x3f80), 1.0);
        assert_eq!(bf16_to_f64(0xc040), -3.0);
        assert_eq!(bf16_to_f64(0x3fc0), 1.5);
        assert_eq!(bf16_to_f64(0x7f80), f64::INFINITY);
        assert!(bf16_to_f64(0x7fc0).is_nan());
    }

    #[test]
    fn identical_f32_passes_with_zero_diffs() {
        let x = f32s(&[2, 2], &[1.0, -2.0, 3.5, 0.0]);
        let c = compare(&x, &x, Tolerance::for_dtype(DType::F32)).unwrap();
        assert!(c.passed);
        assert_eq!(c.num_elements, 4);
        assert_eq!(c.max_abs_diff, 0.0);
        assert_eq!(c.max_rel_diff, 0.0);
        assert_eq!(c.mean_abs_diff, 0.0);
        assert_eq!(c.worst_index, None);
        assert_eq!(c.worst_multi_index, None);
        assert_eq!(c.num_exceeding, 0);
    }

    #[test]
    fn f32_known_diffs_and_worst_index() {
        let e = f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let a = f32s(&[2, 3], &[1.0, 2.5, 3.0, 4.0, 4.0, 6.25]);
        let c = compare(&e, &a, Tolerance::for_dtype(DType::F32)).unwrap();
        assert_eq!(c.max_abs_diff, 1.0);
        assert_eq!(c.worst_index, Some(4));
        assert_eq!(c.worst_multi_index, Some(vec![1, 1]));
        assert_eq!(c.worst_expected, Some(5.0));
        assert_eq!(c.worst_actual, Some(4.0));
        assert_eq!(c.max_rel_diff, 0.25); // 0.5 / 2.0
        assert_eq!(c.mean_abs_diff, (0.5 + 1.0 + 0.25) / 6.0);
        assert_eq!(c.num_exceeding, 3);
        assert!(!c.passed);
        assert!(c.clone().into_result().is_err());
        // Loose enough tolerances pass, with allclose's asymmetric formula.
        let loose = Tolerance {
            atol: 0.0,
            rtol: 0.25,
        };
        assert!(compare(&e, &a, loose).unwrap().passed); // 1.0 <= 0.25 * 5, 0.5 <= 0.25*2
        let tight = Tolerance {
            atol: 0.0,
            rtol: 0.2,
        };
        assert_eq!(compare(&e, &a, tight).unwrap().num_exceeding, 1); // 0.5 > 0.2 * 2
    }

    #[test]
    fn f32_tutorial_default_tolerance() {
        let e = f32s(&[2], &[1.0, 100.0]);
        let a = f32s(&[2], &[1.0 + 5e-7, 100.0]);
        let c = compare(&e, &a, Tolerance::for_dtype(DType::F32)).unwrap();
        assert!(c.passed, "{c}");
        let a = f32s(&[2], &[1.0 + 2e-6, 100.0]);
        assert!(
            !compare(&e, &a, Tolerance::for_dtype(DType::F32))
                .unwrap()
                .passed
        );
    }

    #[test]
    fn ties_keep_the_first_index() {
        let e = f32s(&[4], &[0.0, 0.0, 0.0, 0.0]);
        let a = f32s(&[4], &[0.0, 1.0, -1.0, 1.0]);
        let c = compare(&e, &a, Tolerance::EXACT).unwrap();
        assert_eq!(c.worst_index, Some(1));
    }

    #[test]
    fn relative_diff_against_zero_uses_tiny() {
        let e = f32s(&[1], &[0.0]);
        let a = f32s(&[1], &[1.0]);
        let c = compare(&e, &a, Tolerance::EXACT).unwrap();
        assert_eq!(c.max_rel_diff, 1.0 / f32::MIN_POSITIVE as f64);
    }

    #[test]
    fn f64_known_values() {
        let e = f64s(&[3], &[1.0, 2.0, 1e300]);
        let a = f64s(&[3], &[1.0 + 1e-13, 2.0, 1e300]);
        let c = compare(&e, &a, Tolerance::for_dtype(DType::F64)).unwrap();
        assert!(c.passed);
        assert!((c.max_abs_diff - 1e-13).abs() < 1e-15);
        let a = f64s(&[3], &[1.0 + 1e-11, 2.0, 1e300]);
        assert!(
            !compare(&e, &a, Tolerance::for_dtype(DType::F64))
                .unwrap()
                .passed
        );
        // Huge finite differences overflow to inf without becoming mismatches.
        let e = f64s(&[1], &[f64::MAX]);
        let a = f64s(&[1], &[-f64::MAX]);
        let c = compare(&e, &a, Tolerance::EXACT).unwrap();
        assert_eq!(c.max_abs_diff, f64::INFINITY);
        assert_eq!(c.inf_mismatches, 0);
        assert!(!c.passed);
    }

    #[test]
    fn f16_and_bf16_known_values() {
        // f16: 1.0 vs 1.0009765625 (next representable) is within 1e-3 + 1e-3 * 1.
        let e = u16s(DType::F16, &[2], &[0x3c00, 0x4000]);
        let a = u16s(DType::F16, &[2], &[0x3c01, 0x4000]);
        let c = compare(&e, &a, Tolerance::for_dtype(DType::F16)).unwrap();
        assert!(c.passed);
        assert_eq!(c.max_abs_diff, 0.0009765625);
        assert_eq!(c.worst_index, Some(0));
        // 1.0 vs 1.5 is not.
        let a = u16s(DType::F16, &[2], &[0x3e00, 0x4000]);
        let c = compare(&e, &a, Tolerance::for_dtype(DType::F16)).unwrap();
        assert!(!c.passed);
        assert_eq!(c.max_abs_diff, 0.5);

        // bf16: 1.0 vs 1.0078125 (next representable) passes 1e-2 / 1e-2.
        let e = u16s(DType::BF16, &[2], &[0x3f80, 0xc040]);
        let a = u16s(DType::BF16, &[2], &[0x3f81, 0xc040]);
        let c = compare(&e, &a, Tolerance::for_dtype(DType::BF16)).unwrap();
        assert!(c.passed);
        assert_eq!(c.max_abs_diff, 0.0078125);
        let a = u16s(DType::BF16, &[2], &[0x3f80, 0xc000]); // -3 vs -2
        let c = compare(&e, &a, Tolerance::for_dtype(DType::BF16)).unwrap();
        assert!(!c.passed);
        assert_eq!(c.worst_expected, Some(-3.0));
        assert_eq!(c.worst_actual, Some(-2.0));
    }

    #[test]
    fn integers_and_bools_compare_exactly() {
        let e = t(
            DType::I64,
            &[3],
            [i64::MIN, 0, i64::MAX]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        );
        let a = t(
            DType::I64,
            &[3],
            [i64::MIN, 0, i64::MAX - 1]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        );
        let c = compare(&e, &a, Tolerance::for_dtype(DType::I64)).unwrap();
        // A difference of 1 at 2^63 is invisible in f64 but still caught.
        assert!(!c.passed);
        assert_eq!(c.num_exceeding, 1);
        assert_eq!(c.max_abs_diff, 1.0);
        assert_eq!(c.worst_index, Some(2));
        // Extreme differences do not overflow.
        let a = t(
            DType::I64,
            &[3],
            [i64::MAX, 0, i64::MAX]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        );
        let c = compare(&e, &a, Tolerance::EXACT).unwrap();
        assert_eq!(c.max_abs_diff, (u64::MAX as f64));
        assert_eq!(c.worst_index, Some(0));

        let e = t(DType::U8, &[4], vec![0, 1, 255, 7]);
        let a = t(DType::U8, &[4], vec![0, 1, 250, 7]);
        let c = compare(&e, &a, Tolerance::for_dtype(DType::U8)).unwrap();
        assert_eq!((c.max_abs_diff, c.worst_index), (5.0, Some(2)));
        // An explicit tolerance is honoured for integers too.
        assert!(
            compare(
                &e,
                &a,
                Tolerance {
                    atol: 5.0,
                    rtol: 0.0
                }
            )
            .unwrap()
            .passed
        );

        let e = t(DType::I8, &[2], vec![0x80, 1]);
        let a = t(DType::I8, &[2], vec![0x7f, 1]);
        assert_eq!(
            compare(&e, &a, Tolerance::EXACT).unwrap().max_abs_diff,
            255.0
        );

        let e = t(DType::Bool, &[3], vec![0, 1, 1]);
        let a = t(DType::Bool, &[3], vec![0, 2, 0]); // nonzero is true
        let c = compare(&e, &a, Tolerance::for_dtype(DType::Bool)).unwrap();
        assert_eq!(c.num_exceeding, 1);
        assert_eq!(c.worst_index, Some(2));

        for (dt, bytes) in [
            (DType::I16, (-5i16).to_le_bytes().to_vec()),
            (DType::U16, 5u16.to_le_bytes().to_vec()),
            (DType::I32, (-5i32).to_le_bytes().to_vec()),
            (DType::U32, 5u32.to_le_bytes().to_vec()),
            (DType::U64, u64::MAX.to_le_bytes().to_vec()),
        ] {
            let x = t(dt, &[], bytes);
            let c = compare(&x, &x, Tolerance::for_dtype(dt)).unwrap();
            assert!(c.passed && c.num_elements == 1, "{dt:?}");
        }
        let e = t(DType::U64, &[1], u64::MAX.to_le_bytes().to_vec());
        let a = t(DType::U64, &[1], 0u64.to_le_bytes().to_vec());
        let c = compare(&e, &a, Tolerance::EXACT).unwrap();
        assert_eq!(c.max_abs_diff, u64::MAX as f64);
        assert_eq!(c.max_rel_diff, 1.0);
    }

    #[test]
    fn nan_handling() {
        let nan = f32::NAN;
        // NaN at the same position is equal.
        let e = f32s(&[3], &[nan, 1.0, 2.0]);
        let c = compare(&e, &e, Tolerance::for_dtype(DType::F32)).unwrap();
        assert!(c.passed);
        assert_eq!(c.nan_mismatches, 0);
        assert_eq!(c.mean_abs_diff, 0.0);
        // NaN in one but not the other.
        let a = f32s(&[3], &[1.0, nan, 2.0]);
        let c = compare(&e, &a, Tolerance::for_dtype(DType::F32)).unwrap();
        assert!(!c.passed);
        assert_eq!(c.nan_mismatches, 2);
        assert_eq!(c.inf_mismatches, 0);
        assert_eq!(c.num_exceeding, 2);
        assert_eq!(c.first_nonfinite_mismatch, Some(0));
        assert_eq!(c.max_abs_diff, 0.0);
        assert_eq!(c.mean_abs_diff, 0.0);
        assert!(!c.max_abs_diff.is_nan());
        // Any tolerance, even infinite, fails a NaN mismatch.
        let inf_tol = Tolerance {
            atol: f64::INFINITY,
            rtol: 0.0,
        };
        assert!(!compare(&e, &a, inf_tol).unwrap().passed);
        // f16 NaN payloads are all NaN.
        let e = u16s(DType::F16, &[1], &[0x7e00]);
        let a = u16s(DType::F16, &[1], &[0xfe01]);
        assert!(compare(&e, &a, Tolerance::EXACT).unwrap().passed);
    }

    #[test]
    fn inf_handling() {
        let inf = f32::INFINITY;
        let e = f32s(&[4], &[inf, -inf, inf, 1.0]);
        let same = compare(&e, &e, Tolerance::EXACT).unwrap();
        assert!(same.passed);
        assert_eq!(same.inf_mismatches, 0);
        let a = f32s(&[4], &[inf, inf, 3.0, -inf]);
        let c = compare(&e, &a, Tolerance::for_dtype(DType::F32)).unwrap();
        assert_eq!(c.inf_mismatches, 3);
        assert_eq!(c.nan_mismatches, 0);
        assert_eq!(c.first_nonfinite_mismatch, Some(1));
        assert_eq!(c.num_exceeding, 3);
        assert!(!c.passed);
        assert_eq!(c.max_abs_diff, 0.0);
        // NaN vs inf is a NaN mismatch.
        let e = f32s(&[1], &[f32::NAN]);
        let a = f32s(&[1], &[inf]);
        let c = compare(&e, &a, Tolerance::EXACT).unwrap();
        assert_eq!((c.nan_mismatches, c.inf_mismatches), (1, 0));
    }

    #[test]
    fn serde_round_trip_with_nonfinite_values() {
        let e = f64s(&[1], &[f64::MAX]);
        let a = f64s(&[1], &[-f64::MAX]);
        let c = compare(
            &e,
            &a,
            Tolerance {
                atol: f64::INFINITY,
                rtol: 0.0,
            },
        )
        .unwrap();
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"max_abs_diff\":\"inf\""), "{json}");
        let back: Comparison = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        let x = f32s(&[2], &[1.0, 2.0]);
        let c = compare(&x, &x, Tolerance::for_dtype(DType::F32)).unwrap();
        let back: Comparison = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn scalars_and_empty_tensors() {
        let e = f32s(&[], &[1.0]);
        let a = f32s(&[], &[3.0]);
        let c = compare(&e, &a, Tolerance::EXACT).unwrap();
        assert_eq!(c.num_elements, 1);
        assert_eq!(c.worst_multi_index, Some(vec![]));
        let e = f32s(&[0, 3], &[]);
        let c = compare(&e, &e, Tolerance::EXACT).unwrap();
        assert_eq!(c.num_elements, 0);
        assert!(c.passed);
        assert_eq!(c.mean_abs_diff, 0.0);
    }

    #[test]
    fn mismatches_and_bad_input_are_errors() {
        let a = f32s(&[2, 3], &[0.0; 6]);
        let b = f32s(&[3, 2], &[0.0; 6]);
        let err = compare(&a, &b, Tolerance::EXACT).unwrap_err().to_string();
        assert!(
            matches!(
                compare(&a, &b, Tolerance::EXACT),
                Err(Error::InvalidArgument { .. })
            ) && err.contains("[2, 3]")
                && err.contains("[3, 2]"),
            "{err}"
        );
        let c = f64s(&[2, 3], &[0.0; 6]);
        let err = compare(&a, &c, Tolerance::EXACT).unwrap_err().to_string();
        assert!(err.contains("float32") && err.contains("float64"), "{err}");
        // Bytes not matching the shape.
        let short = t(DType::F32, &[2, 3], vec![0; 20]);
        assert!(matches!(
            compare(&a, &short, Tolerance::EXACT),
            Err(Error::InvalidArgument { .. })
        ));
        // Unsupported dtypes.
        let s = Tensor {
            dtype: DType::String,
            shape: vec![1],
            data: TensorData::Strings(vec![Cow::Borrowed(b"x")]),
        };
        assert!(compare(&s, &s, Tolerance::EXACT).is_err());
        let c64 = t(DType::C64, &[1], vec![0; 8]);
        assert!(compare(&c64, &c64, Tolerance::EXACT).is_err());
        // Bad tolerances.
        for bad in [-1.0, f64::NAN] {
            let tol = Tolerance {
                atol: bad,
                rtol: 0.0,
            };
            assert!(compare(&a, &a, tol).is_err());
        }
        // Overflowing shapes do not panic.
        let huge = t(DType::F32, &[u64::MAX, 2], vec![]);
        assert!(compare(&huge, &huge, Tolerance::EXACT).is_err());
    }

    fn lcg_values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn parallel_equals_serial() {
        let n = PARALLEL_THRESHOLD + 12345;
        let ev = lcg_values(n, 1);
        let mut av: Vec<f32> = ev
            .iter()
            .zip(lcg_values(n, 2))
            .map(|(e, noise)| e + noise * 1e-6)
            .collect();
        av[7] = f32::NAN;
        av[n - 3] = f32::INFINITY;
        av[n / 2] += 0.5; // the single worst element, in a middle chunk
        let e = f32s(&[n as u64], &ev);
        let a = f32s(&[n as u64], &av);
        let tol = Tolerance::for_dtype(DType::F32);
        let serial = compare_impl(&e, &a, tol, Some(false)).unwrap();
        let parallel = compare_impl(&e, &a, tol, Some(true)).unwrap();
        let auto = compare(&e, &a, tol).unwrap();
        assert_eq!(serial, parallel);
        assert_eq!(serial, auto);
        assert_eq!(
            serial.mean_abs_diff.to_bits(),
            parallel.mean_abs_diff.to_bits()
        );
        assert_eq!(serial.worst_index, Some((n / 2) as u64));
        assert_eq!(serial.nan_mismatches, 1);
        assert_eq!(serial.inf_mismatches, 1);
        assert_eq!(serial.first_nonfinite_mismatch, Some(7));
        assert_eq!(serial.num_elements, n as u64);
        // Repeated parallel runs agree bit for bit.
        for _ in 0..3 {
            assert_eq!(compare_impl(&e, &a, tol, Some(true)).unwrap(), serial);
        }
    }

    #[test]
    fn compare_many_reports_each_output() {
        let x = f32s(&[2], &[1.0, 2.0]);
        let y = f32s(&[2], &[1.0, 2.5]);
        let i = t(DType::I32, &[1], 3i32.to_le_bytes().to_vec());
        let all = compare_many(&[("a", &x, &x), ("b", &x, &y), ("c", &i, &i)], None).unwrap();
        assert!(!all.passed);
        assert_eq!(
            all.outputs
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert!(all.outputs[0].comparison.passed);
        assert!(!all.outputs[1].comparison.passed);
        assert_eq!(all.outputs[2].comparison.tolerance, Tolerance::EXACT);
        let err = all.into_result().unwrap_err();
        assert!(matches!(err, Error::Validation { .. }));
        assert!(err.to_string().contains("b: float32"), "{err}");

        let ok = compare_many(&[("a", &x, &x)], None).unwrap();
        assert!(ok.passed && ok.into_result().is_ok());
        let loose = Tolerance {
            atol: 1.0,
            rtol: 0.0,
        };
        assert!(compare_many(&[("b", &x, &y)], Some(loose)).unwrap().passed);

        let err = compare_many(&[("a", &x, &x), ("a", &x, &x)], None).unwrap_err();
        assert!(err.to_string().contains("\"a\""));
        let z = f32s(&[1], &[1.0]);
        let err = compare_many(&[("out", &x, &z)], None).unwrap_err();
        assert!(err.to_string().contains("output \"out\""), "{err}");
        assert!(compare_many(&[], None).unwrap().passed);
    }
}
