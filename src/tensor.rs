//! Format-neutral tensors: a dtype, a shape and bytes that are borrowed where possible.

use std::borrow::Cow;

use crate::error::{Error, Result};

/// Element types kerasafe moves between formats. The discriminants are TensorFlow's `DataType`
/// enum values (`tensorflow/core/framework/types.proto`), which checkpoints store on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
#[allow(missing_docs)]
pub enum DType {
    F32 = 1,
    F64 = 2,
    I32 = 3,
    U8 = 4,
    I16 = 5,
    I8 = 6,
    String = 7,
    C64 = 8,
    I64 = 9,
    Bool = 10,
    BF16 = 14,
    U16 = 17,
    C128 = 18,
    F16 = 19,
    U32 = 22,
    U64 = 23,
    F8E5M2 = 24,
    F8E4M3FN = 25,
    F8E4M3FNUZ = 26,
    F8E4M3B11FNUZ = 27,
    F8E5M2FNUZ = 28,
}

const ALL: [DType; 21] = [
    DType::F32,
    DType::F64,
    DType::I32,
    DType::U8,
    DType::I16,
    DType::I8,
    DType::String,
    DType::C64,
    DType::I64,
    DType::Bool,
    DType::BF16,
    DType::U16,
    DType::C128,
    DType::F16,
    DType::U32,
    DType::U64,
    DType::F8E5M2,
    DType::F8E4M3FN,
    DType::F8E4M3FNUZ,
    DType::F8E4M3B11FNUZ,
    DType::F8E5M2FNUZ,
];

impl DType {
    /// Every dtype kerasafe can hold.
    pub fn all() -> &'static [DType] {
        &ALL
    }

    /// The TensorFlow enum value.
    pub fn tf_enum(self) -> i32 {
        self as i32
    }

    /// The dtype for a TensorFlow enum value, if kerasafe can hold it.
    pub fn from_tf_enum(v: i32) -> Option<DType> {
        ALL.iter().copied().find(|d| *d as i32 == v)
    }

    /// numpy / ml_dtypes / Keras name (`"float32"`, `"bfloat16"`, `"string"`).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::I32 => "int32",
            DType::U8 => "uint8",
            DType::I16 => "int16",
            DType::I8 => "int8",
            DType::String => "string",
            DType::C64 => "complex64",
            DType::I64 => "int64",
            DType::Bool => "bool",
            DType::BF16 => "bfloat16",
            DType::U16 => "uint16",
            DType::C128 => "complex128",
            DType::F16 => "float16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::F8E5M2 => "float8_e5m2",
            DType::F8E4M3FN => "float8_e4m3fn",
            DType::F8E4M3FNUZ => "float8_e4m3fnuz",
            DType::F8E4M3B11FNUZ => "float8_e4m3b11fnuz",
            DType::F8E5M2FNUZ => "float8_e5m2fnuz",
        }
    }

    /// Parse a numpy-style name; `"object"`/`"bytes"` mean strings.
    pub fn from_name(name: &str) -> Result<DType> {
        match name {
            "object" | "bytes" | "str" => return Ok(DType::String),
            "half" => return Ok(DType::F16),
            "float" => return Ok(DType::F32),
            "double" => return Ok(DType::F64),
            _ => {}
        }
        ALL.iter()
            .copied()
            .find(|d| d.name() == name)
            .ok_or_else(|| Error::invalid(format!("unsupported dtype {name:?}")))
    }

    /// Bytes per element; `None` for variable-size strings.
    pub fn size(self) -> Option<usize> {
        Some(match self {
            DType::String => return None,
            DType::U8 | DType::I8 | DType::Bool => 1,
            DType::F8E5M2
            | DType::F8E4M3FN
            | DType::F8E4M3FNUZ
            | DType::F8E4M3B11FNUZ
            | DType::F8E5M2FNUZ => 1,
            DType::I16 | DType::U16 | DType::F16 | DType::BF16 => 2,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F64 | DType::I64 | DType::U64 | DType::C64 => 8,
            DType::C128 => 16,
        })
    }

    /// Whether values are floating point (real or complex); decides comparison tolerances.
    pub fn is_float(self) -> bool {
        matches!(
            self,
            DType::F16 | DType::BF16 | DType::F32 | DType::F64 | DType::C64 | DType::C128
        ) || self.name().starts_with("float8")
    }
}

/// The values of a tensor: raw little-endian element bytes (row-major), or one byte string per element.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData<'a> {
    /// Fixed-size elements, packed, C order.
    Bytes(Cow<'a, [u8]>),
    /// `DT_STRING` elements.
    Strings(Vec<Cow<'a, [u8]>>),
}

/// A named value as stored by any format.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor<'a> {
    /// Element type.
    pub dtype: DType,
    /// Dimensions, outermost first; empty for scalars.
    pub shape: Vec<u64>,
    /// The values.
    pub data: TensorData<'a>,
}

/// Number of elements of `shape`, or an error when the product overflows.
pub fn num_elements(shape: &[u64]) -> Result<u64> {
    shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            Error::format(format!(
                "shape {shape:?} has more elements than fit in 64 bits"
            ))
        })
}

/// Byte size of a fixed-size tensor, checked against overflow.
pub fn byte_size(dtype: DType, shape: &[u64]) -> Result<u64> {
    let elem = dtype
        .size()
        .ok_or_else(|| Error::invalid("string tensors have no fixed size"))?;
    num_elements(shape)?
        .checked_mul(elem as u64)
        .ok_or_else(|| {
            Error::format(format!(
                "{} tensor of shape {shape:?} is too large",
                dtype.name()
            ))
        })
}

impl<'a> Tensor<'a> {
    /// A fixed-size tensor over borrowed bytes; checks that the byte count matches the shape.
    pub fn from_bytes(dtype: DType, shape: Vec<u64>, bytes: &'a [u8]) -> Result<Self> {
        let want = byte_size(dtype, &shape)?;
        if want != bytes.len() as u64 {
            return Err(Error::invalid(format!(
                "{} tensor of shape {shape:?} needs {want} bytes, got {}",
                dtype.name(),
                bytes.len()
            )));
        }
        Ok(Tensor {
            dtype,
            shape,
            data: TensorData::Bytes(Cow::Borrowed(bytes)),
        })
    }

    /// Number of bytes the values occupy in memory (strings: sum of lengths).
    pub fn nbytes(&self) -> u64 {
        match &self.data {
            TensorData::Bytes(b) => b.len() as u64,
            TensorData::Strings(s) => s.iter().map(|x| x.len() as u64).sum(),
        }
    }

    /// A copy that owns its bytes.
    pub fn into_owned(self) -> Tensor<'static> {
        let data = match self.data {
            TensorData::Bytes(b) => TensorData::Bytes(Cow::Owned(b.into_owned())),
            TensorData::Strings(s) => {
                TensorData::Strings(s.into_iter().map(|x| Cow::Owned(x.into_owned())).collect())
            }
        };
        Tensor {
            dtype: self.dtype,
            shape: self.shape,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in ALL {
            assert_eq!(DType::from_name(d.name()).unwrap(), d);
            assert_eq!(DType::from_tf_enum(d.tf_enum()), Some(d));
        }
        assert!(DType::from_name("float128").is_err());
        assert_eq!(DType::from_tf_enum(21), None);
    }

    #[test]
    fn overflowing_shape_is_an_error() {
        assert!(num_elements(&[u64::MAX, 2]).is_err());
        assert!(byte_size(DType::F64, &[u64::MAX / 4]).is_err());
        assert_eq!(byte_size(DType::F32, &[2, 3]).unwrap(), 24);
        assert_eq!(byte_size(DType::F32, &[]).unwrap(), 4);
    }
}
