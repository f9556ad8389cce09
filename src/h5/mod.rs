//! Keras HDF5 files: legacy `.h5` full models and weights, Keras 3 `.weights.h5` and the
//! `model.weights.h5` member of `.keras` archives (spec §3, §4.4, §4.5).
//!
//! The file is modelled as an in-memory tree: [`H5Group`]s holding attributes ([`Attrs`]) and
//! named children ([`H5Node`]), which are groups or [`H5Dataset`]s (dtype, shape, bytes,
//! attributes). Callers decide names and values; this module does all file I/O:
//!
//! * [`write_file`] writes a tree the way h5py does for Keras (superblock 0, symbol-table groups,
//!   contiguous uncompressed datasets, h5py's string/bool/float16/bfloat16/complex encodings,
//!   §3.1, §3.4), with string lists longer than the 64 KiB attribute budget split into
//!   `name0`, `name1`, … exactly as Keras' `save_attributes_to_hdf5_group` does (§3.5);
//! * [`read_file`] reads everything back (datasets' bytes owned), [`read_structure`] everything
//!   but the dataset values; [`Attrs::string_list`] reads chunked lists back transparently.
//!
//! Reading never trusts the file: the HDF5 signature is checked before libhdf5 sees the file,
//! every libhdf5 failure becomes [`Error::Format`] naming the file, soft/external links and
//! external/virtual storage are refused ([`Error::Unsafe`]), and declared sizes are bounded by
//! the file size (contiguous data) or by a decompression budget (chunked, compressed data).
//!
//! libhdf5 is not thread-safe; every call here runs under the global lock of the `hdf5` crate,
//! so HDF5 I/O from several threads is serialised. libhdf5's automatic printing of error stacks
//! to stderr is turned off.

use std::borrow::Cow;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::file_bytes::ReadAt;
use crate::tensor::{byte_size, num_elements, DType, Tensor, TensorData};

#[cfg(feature = "h5")]
mod ffi;
#[cfg(feature = "h5")]
mod guard;
#[cfg(feature = "h5")]
mod read;
#[cfg(feature = "h5")]
mod write;

/// The 8 bytes every HDF5 file starts with (at offset 0, or 512, 1024, 2048… after a user block).
pub const HDF5_SIGNATURE: [u8; 8] = *b"\x89HDF\r\n\x1a\n";

/// Keras' `HDF5_OBJECT_HEADER_LIMIT`: string lists whose fixed-width form is larger than this
/// are stored as `name0`, `name1`, … (spec §3.5).
pub const HDF5_OBJECT_HEADER_LIMIT: usize = 64512;

/// A value of an HDF5 attribute. The variants follow what h5py writes for the Python value Keras
/// passes (spec §3.4), so a tree read back from a Keras file writes out with the same encodings.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// Scalar variable-length UTF-8 string (h5py: a Python `str`; Keras: root `keras_version`,
    /// `backend`, `vars/@name`, dataset `@dtype`).
    Str(String),
    /// Scalar variable-length ASCII-tagged string holding arbitrary bytes, usually UTF-8 (h5py: a
    /// Python `bytes`; Keras: `model_config`, `training_config`, `model_weights/@backend`). Also
    /// what fixed-length scalar strings (old h5py) read as. Must not contain NUL bytes.
    Bytes(Vec<u8>),
    /// 1-D array of variable-length UTF-8 strings (h5py: a list of `str`).
    StrList(Vec<String>),
    /// 1-D array of variable-length ASCII-tagged byte strings (h5py: a list of `bytes`; Keras:
    /// unchunked `layer_names`, `weight_names`).
    BytesList(Vec<Vec<u8>>),
    /// 1-D array of fixed-length NUL-padded strings (h5py: a NumPy `S<n>` array; Keras: chunked
    /// `layer_names0`, …, h5py 2 era lists). Padding is stripped on read.
    FixedBytesList(Vec<Vec<u8>>),
    /// Scalar 64-bit signed integer (h5py: a Python `int`). Integer attributes of any width read
    /// as this (unsigned values above `i64::MAX` are clipped by libhdf5).
    Int(i64),
    /// Scalar 64-bit float (h5py: a Python `float`); `float32` attributes read as this too.
    Float(f64),
    /// Scalar boolean (h5py: NumPy `bool_`, an HDF5 enum over int8 `FALSE = 0`, `TRUE = 1`).
    Bool(bool),
    /// 1-D array of 64-bit signed integers.
    Ints(Vec<i64>),
    /// 1-D array of 64-bit floats. An empty one is what Keras writes for an empty name list (§3.4).
    Floats(Vec<f64>),
    /// An attribute of a type this model does not hold (read only; writing it is an error).
    Other {
        /// The HDF5 type and shape, in words.
        description: String,
    },
}

impl AttrValue {
    /// The value as one string: any scalar (or one-element) string attribute, decoded as UTF-8
    /// whatever charset the file declares. `None` for non-strings.
    pub fn as_string(&self) -> Option<Result<String>> {
        let bytes: &[u8] = match self {
            AttrValue::Str(s) => return Some(Ok(s.clone())),
            AttrValue::Bytes(b) => b,
            AttrValue::StrList(v) if v.len() == 1 => return Some(Ok(v[0].clone())),
            AttrValue::BytesList(v) | AttrValue::FixedBytesList(v) if v.len() == 1 => &v[0],
            _ => return None,
        };
        Some(utf8(bytes))
    }

    /// The value as a list of strings, decoded as UTF-8 whatever charset the file declares; a
    /// numeric empty array (what Keras writes for an empty list) is an empty list. `None` for
    /// other values.
    pub fn as_string_list(&self) -> Option<Result<Vec<String>>> {
        match self {
            AttrValue::StrList(v) => Some(Ok(v.clone())),
            AttrValue::BytesList(v) | AttrValue::FixedBytesList(v) => {
                Some(v.iter().map(|b| utf8(b)).collect())
            }
            AttrValue::Ints(v) if v.is_empty() => Some(Ok(Vec::new())),
            AttrValue::Floats(v) if v.is_empty() => Some(Ok(Vec::new())),
            AttrValue::Str(_) | AttrValue::Bytes(_) => self.as_string().map(|r| r.map(|s| vec![s])),
            _ => None,
        }
    }

    /// The items of a string-list value as bytes, `None` for other values.
    #[cfg_attr(not(feature = "h5"), allow(dead_code))]
    fn string_items(&self) -> Option<Vec<&[u8]>> {
        match self {
            AttrValue::StrList(v) => Some(v.iter().map(|s| s.as_bytes()).collect()),
            AttrValue::BytesList(v) | AttrValue::FixedBytesList(v) => {
                Some(v.iter().map(|b| b.as_slice()).collect())
            }
            _ => None,
        }
    }
}

fn utf8(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Error::format(format!("string attribute value {bytes:?} is not UTF-8")))
}

/// The attributes of a group or dataset: name → value, in HDF5's name order on read and in
/// insertion order on write (HDF5 itself lists them by name).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attrs(pub Vec<(String, AttrValue)>);

impl Attrs {
    /// No attributes.
    pub fn new() -> Self {
        Attrs(Vec::new())
    }

    /// The value of attribute `name`.
    pub fn get(&self, name: &str) -> Option<&AttrValue> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Set attribute `name`, replacing an existing value.
    pub fn set(&mut self, name: impl Into<String>, value: AttrValue) {
        let name = name.into();
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    /// Remove attribute `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<AttrValue> {
        let i = self.0.iter().position(|(n, _)| n == name)?;
        Some(self.0.remove(i).1)
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no attributes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterate over `(name, value)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &AttrValue)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// Attribute `name` as one string (see [`AttrValue::as_string`]); `Ok(None)` when absent,
    /// an error when present but not a string or not UTF-8.
    pub fn string(&self, name: &str) -> Result<Option<String>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_string()
                .unwrap_or_else(|| {
                    Err(Error::format(format!(
                        "attribute {name:?} is not a string: {v:?}"
                    )))
                })
                .map(Some),
        }
    }

    /// Attribute `name` as a list of strings, the way Keras' `load_attributes_from_hdf5_group`
    /// reads it: `name` if present, else the concatenation of `name0`, `name1`, … up to the first
    /// missing index (spec §3.5). `Ok(None)` when neither exists.
    pub fn string_list(&self, name: &str) -> Result<Option<Vec<String>>> {
        let as_list = |attr: &str, v: &AttrValue| {
            v.as_string_list().unwrap_or_else(|| {
                Err(Error::format(format!(
                    "attribute {attr:?} is not a list of strings: {v:?}"
                )))
            })
        };
        if let Some(v) = self.get(name) {
            return as_list(name, v).map(Some);
        }
        let mut out: Option<Vec<String>> = None;
        for i in 0usize.. {
            let chunk = format!("{name}{i}");
            match self.get(&chunk) {
                Some(v) => out.get_or_insert_with(Vec::new).extend(as_list(&chunk, v)?),
                None => break,
            }
        }
        Ok(out)
    }
}

/// How a dataset's values are laid out in the file (read only; [`write_file`] always writes
/// contiguous, unfiltered datasets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageInfo {
    /// `"contiguous"`, `"chunked"`, `"compact"` or `"virtual"`.
    pub layout: &'static str,
    /// Bytes the values occupy in the file (after compression).
    pub stored_bytes: u64,
    /// Number of filters (compression, shuffle, checksums) in the pipeline.
    pub filters: u32,
    /// Where the values start in the file when they can be read from it as they are:
    /// contiguous, unfiltered, in memory byte order (little-endian), not bool, and inside the
    /// file. What [`Values::Deferred`] reads leave to the caller.
    pub raw_offset: Option<u64>,
}

/// Which dataset values a read fills in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// None: names, attributes, dtypes, shapes and storage details only.
    Skip,
    /// Every dataset's.
    All,
    /// All but those of [`DEFER_MIN`] bytes or more that can be read straight from the file
    /// (`storage.raw_offset` is set): those keep `data: None`, for the caller to read one at a
    /// time as it needs them (a loader holds one value at a time, not the whole file).
    Deferred,
}

/// The smallest dataset whose values a [`Values::Deferred`] read leaves in the file.
pub const DEFER_MIN: u64 = 64 << 10;

/// A dataset: a tensor plus attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct H5Dataset<'a> {
    /// Element type. bfloat16 and float8 types are HDF5 opaque types on disk (spec §3.1).
    pub dtype: DType,
    /// Dimensions, outermost first; empty for scalars.
    pub shape: Vec<u64>,
    /// The values; `None` after [`read_structure`].
    pub data: Option<TensorData<'a>>,
    /// The dataset's attributes (Keras 3: `dtype = "bfloat16"` on bfloat16 weights).
    pub attrs: Attrs,
    /// Storage details, filled in by the readers.
    pub storage: Option<StorageInfo>,
}

impl<'a> H5Dataset<'a> {
    /// A dataset holding `tensor`, without attributes.
    pub fn from_tensor(tensor: Tensor<'a>) -> Self {
        H5Dataset {
            dtype: tensor.dtype,
            shape: tensor.shape,
            data: Some(tensor.data),
            attrs: Attrs::new(),
            storage: None,
        }
    }

    /// The values as a tensor borrowing this dataset's bytes; `None` when not loaded.
    pub fn tensor(&self) -> Option<Tensor<'_>> {
        let data = match self.data.as_ref()? {
            TensorData::Bytes(b) => TensorData::Bytes(Cow::Borrowed(b.as_ref())),
            TensorData::Strings(s) => {
                TensorData::Strings(s.iter().map(|x| Cow::Borrowed(x.as_ref())).collect())
            }
        };
        Some(Tensor {
            dtype: self.dtype,
            shape: self.shape.clone(),
            data,
        })
    }

    /// The values as a tensor; `None` when not loaded.
    pub fn into_tensor(self) -> Option<Tensor<'a>> {
        Some(Tensor {
            dtype: self.dtype,
            shape: self.shape,
            data: self.data?,
        })
    }

    /// Check that the values match dtype and shape (writers call this).
    #[cfg_attr(not(feature = "h5"), allow(dead_code))]
    fn check(&self) -> Result<()> {
        match &self.data {
            None => Err(Error::invalid(
                "dataset has no values (it was read with read_structure)",
            )),
            Some(TensorData::Bytes(b)) => {
                if self.dtype == DType::String {
                    return Err(Error::invalid("string dataset given as raw bytes"));
                }
                let want = byte_size(self.dtype, &self.shape)?;
                if want != b.len() as u64 {
                    return Err(Error::invalid(format!(
                        "{} dataset of shape {:?} needs {want} bytes, got {}",
                        self.dtype.name(),
                        self.shape,
                        b.len()
                    )));
                }
                Ok(())
            }
            Some(TensorData::Strings(s)) => {
                if self.dtype != DType::String || num_elements(&self.shape)? != s.len() as u64 {
                    return Err(Error::invalid(format!(
                        "string dataset of shape {:?} has {} elements",
                        self.shape,
                        s.len()
                    )));
                }
                Ok(())
            }
        }
    }
}

/// A child of a group.
#[derive(Debug, Clone, PartialEq)]
pub enum H5Node<'a> {
    /// A subgroup.
    Group(H5Group<'a>),
    /// A dataset.
    Dataset(H5Dataset<'a>),
}

/// A group: attributes and named children (HDF5's name order on read — alphabetical, so
/// `"10"` comes before `"2"`; creation order on write).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct H5Group<'a> {
    /// The group's attributes.
    pub attrs: Attrs,
    /// Children by link name. Names are non-empty, contain no `/` and are unique.
    pub children: Vec<(String, H5Node<'a>)>,
}

impl<'a> H5Group<'a> {
    /// An empty group.
    pub fn new() -> Self {
        H5Group::default()
    }

    /// The child called `name`.
    pub fn get(&self, name: &str) -> Option<&H5Node<'a>> {
        self.children
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c)
    }

    /// The child called `name`, mutably.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut H5Node<'a>> {
        self.children
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c)
    }

    /// The subgroup called `name`.
    pub fn group(&self, name: &str) -> Option<&H5Group<'a>> {
        match self.get(name)? {
            H5Node::Group(g) => Some(g),
            H5Node::Dataset(_) => None,
        }
    }

    /// The dataset called `name`.
    pub fn dataset(&self, name: &str) -> Option<&H5Dataset<'a>> {
        match self.get(name)? {
            H5Node::Dataset(d) => Some(d),
            H5Node::Group(_) => None,
        }
    }

    /// The node at a `/`-separated path relative to this group (`"layers/dense/vars/0"`); the
    /// empty path is not a node (use the group itself).
    pub fn get_path(&self, path: &str) -> Option<&H5Node<'a>> {
        let mut parts = path.split('/').filter(|p| !p.is_empty());
        let mut node = self.get(parts.next()?)?;
        for part in parts {
            match node {
                H5Node::Group(g) => node = g.get(part)?,
                H5Node::Dataset(_) => return None,
            }
        }
        Some(node)
    }

    /// Add a child; an error if `name` is invalid or taken.
    pub fn insert(&mut self, name: impl Into<String>, node: H5Node<'a>) -> Result<()> {
        let name = name.into();
        check_link_name(&name)?;
        if self.get(&name).is_some() {
            return Err(Error::invalid(format!("{name:?} exists already")));
        }
        self.children.push((name, node));
        Ok(())
    }

    /// The subgroup `name`, created empty if missing; an error if a dataset has that name.
    pub fn group_mut(&mut self, name: &str) -> Result<&mut H5Group<'a>> {
        check_link_name(name)?;
        let i = match self.children.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                self.children
                    .push((name.to_string(), H5Node::Group(H5Group::new())));
                self.children.len() - 1
            }
        };
        match &mut self.children[i].1 {
            H5Node::Group(g) => Ok(g),
            H5Node::Dataset(_) => Err(Error::invalid(format!("{name:?} is a dataset"))),
        }
    }

    /// Add a node at a `/`-separated path, creating intermediate groups as h5py does for
    /// `group.create_dataset("dense/kernel:0", …)` (legacy weight names contain `/`, §3.2).
    pub fn insert_path(&mut self, path: &str, node: H5Node<'a>) -> Result<()> {
        let parts: Vec<&str> = path.split('/').collect();
        let Some((last, dirs)) = parts.split_last() else {
            return Err(Error::invalid("empty path"));
        };
        let mut group = self;
        for dir in dirs {
            group = group.group_mut(dir)?;
        }
        group.insert(*last, node)
    }

    /// Visit every dataset with its `/`-separated path relative to this group, depth first in
    /// child order.
    pub fn walk_datasets<'s>(&'s self, mut f: impl FnMut(&str, &'s H5Dataset<'a>)) {
        fn go<'s, 'a>(
            g: &'s H5Group<'a>,
            prefix: &mut String,
            f: &mut dyn FnMut(&str, &'s H5Dataset<'a>),
        ) {
            for (name, child) in &g.children {
                let len = prefix.len();
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                prefix.push_str(name);
                match child {
                    H5Node::Dataset(d) => f(prefix, d),
                    H5Node::Group(sub) => go(sub, prefix, f),
                }
                prefix.truncate(len);
            }
        }
        go(self, &mut String::new(), &mut f)
    }
}

fn check_link_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name.contains('/') || name.contains('\0') {
        return Err(Error::invalid(format!(
            "{name:?} is not a valid HDF5 link name (empty, \".\", or contains '/' or NUL)"
        )));
    }
    Ok(())
}

/// How Keras' `save_attributes_to_hdf5_group` splits a list of `n` strings whose longest is
/// `max_len` bytes: the number of pieces (1 = stored whole under the plain name) — the smallest
/// `k` such that every piece of `numpy.array_split` has `nbytes ≤ HDF5_OBJECT_HEADER_LIMIT`,
/// where the NumPy `S` array has an item size of `max(max_len, 1)`. An error when one string
/// alone exceeds the limit (Keras raises too).
pub fn keras_chunk_count(n: usize, max_len: usize) -> Result<usize> {
    if max_len > HDF5_OBJECT_HEADER_LIMIT {
        return Err(Error::invalid(format!(
            "a string of {max_len} bytes cannot be stored in an HDF5 attribute \
             (Keras' limit is {HDF5_OBJECT_HEADER_LIMIT} bytes per item)"
        )));
    }
    if n == 0 {
        return Ok(1);
    }
    let per_piece = HDF5_OBJECT_HEADER_LIMIT / max_len.max(1);
    Ok(n.div_ceil(per_piece))
}

/// Split `items` the way `numpy.array_split(items, k)` does: the first `len % k` pieces get one
/// extra element.
pub fn array_split<T>(items: &[T], k: usize) -> Vec<&[T]> {
    let k = k.max(1);
    let (base, extra) = (items.len() / k, items.len() % k);
    let mut out = Vec::with_capacity(k);
    let mut start = 0;
    for i in 0..k {
        let len = base + usize::from(i < extra);
        out.push(&items[start..start + len]);
        start += len;
    }
    out
}

/// Offsets at which libhdf5 looks for the signature: 0, then 512 and every doubling (user blocks).
fn signature_offsets(len: u64) -> impl Iterator<Item = u64> {
    std::iter::once(0u64)
        .chain((9..63).map(|s| 1u64 << s))
        .take_while(move |&o| o.saturating_add(8) <= len)
}

/// Whether libhdf5 looks for a superblock at byte `at` of a file (one of [`signature_offsets`]):
/// an HDF5 file starting there opens as the whole file, what lies before being its user block.
pub fn may_hold_superblock(at: u64) -> bool {
    at == 0 || (at >= 512 && at.is_power_of_two())
}

/// Where the HDF5 signature is in `file` (of length `len`), if anywhere.
pub(crate) fn find_signature(
    file: &(impl ReadAt + ?Sized),
    len: u64,
) -> std::io::Result<Option<u64>> {
    let mut buf = [0u8; 8];
    for off in signature_offsets(len) {
        file.read_exact_at(&mut buf, off)?;
        if buf == HDF5_SIGNATURE {
            return Ok(Some(off));
        }
    }
    Ok(None)
}

/// Whether the file at `path` is an HDF5 file (its signature is where libhdf5 looks for it).
pub fn is_hdf5(path: &Path) -> Result<bool> {
    let file = File::open(path).at(path)?;
    let len = file.metadata().at(path)?.len();
    Ok(find_signature(&file, len).at(path)?.is_some())
}

/// Whether `bytes` are an HDF5 file's (the signature is where libhdf5 looks for it).
pub fn is_hdf5_bytes(bytes: &[u8]) -> bool {
    matches!(find_signature(bytes, bytes.len() as u64), Ok(Some(_)))
}

/// Files from this size up are mapped for [`precheck`]'s scan rather than read through a buffer.
const MAP_FOR_SCAN: u64 = 64 << 20;

/// Open `path` for reading and check the HDF5 signature, with a clear message for the usual
/// mix-ups, and check the file for structures known to hang libhdf5 (see `guard`). Returns the
/// file length.
fn precheck(path: &Path) -> Result<u64> {
    let mut file = File::open(path).at(path)?;
    let meta = file.metadata().at(path)?;
    if meta.is_dir() {
        return Err(Error::format_in(
            path,
            "is a directory, not an HDF5 file (an unzipped .keras model or a SavedModel?)",
        ));
    }
    let len = meta.len();
    let mut head = [0u8; 8];
    let n = file.read(&mut head).at(path)?;
    if len >= MAP_FOR_SCAN {
        // The guard reads every byte: mapped, it scans the page cache in place (h5_read of a
        // 1.16 GB file, alternating runs: 0.072-0.080 s mapped, 0.082-0.102 s through a buffer).
        let map = crate::file_bytes::ScanMap::open(path)?;
        precheck_bytes(path, &map, len, &head[..n])?;
    } else {
        precheck_bytes(path, &file, len, &head[..n])?;
    }
    Ok(len)
}

/// [`precheck`] for the `len` bytes of `source`, which begin with `head` (up to 8 bytes);
/// `path` names the file in messages.
fn precheck_bytes(
    path: &Path,
    source: &(impl ReadAt + ?Sized),
    len: u64,
    head: &[u8],
) -> Result<()> {
    if let Some(base) = find_signature(source, len).at(path)? {
        #[cfg(feature = "h5")]
        match guard::check_global_heaps(source, len, base).at(path)? {
            guard::Verdict::Fine => {}
            guard::Verdict::Hang(at) => {
                return Err(Error::format_in(
                    path,
                    format!(
                        "corrupt global heap collection at byte {at} (libhdf5 would loop \
                         forever on it)"
                    ),
                ))
            }
            guard::Verdict::TooMany => {
                return Err(Error::format_in(
                    path,
                    "implausibly many global heap objects; refused",
                ))
            }
        }
        #[cfg(not(feature = "h5"))]
        let _ = base;
        return Ok(());
    }
    let what = if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        "a zip archive (a .keras model?)"
    } else if len == 0 {
        "empty"
    } else if len < 8 {
        "too short"
    } else {
        "something else"
    };
    Err(Error::format_in(
        path,
        format!("not an HDF5 file (no HDF5 signature; the file is {what})"),
    ))
}

/// Write `root` to `path` as an HDF5 file, through a temporary sibling renamed into place.
///
/// Encodings follow h5py (spec §3.1, §3.4): numbers as little-endian IEEE/two's complement,
/// float16 as a 2-byte HDF5 float, bfloat16 and float8 as HDF5 opaque types with an empty tag,
/// bool as h5py's int8 enum, complex as h5py's `{r, i}` compound, string tensors as
/// variable-length ASCII; all datasets contiguous and unfiltered; superblock version 0 with
/// symbol-table groups (`libver = earliest`) and no timestamps. String-list attributes too large
/// for the 64 KiB header budget are chunked as Keras does (§3.5).
pub fn write_file(path: &Path, root: &H5Group<'_>) -> Result<()> {
    #[cfg(feature = "h5")]
    {
        write::write_file(path, root)
    }
    #[cfg(not(feature = "h5"))]
    {
        let _ = (path, root);
        Err(no_hdf5())
    }
}

/// [`write_file`] for an artifact being staged: the file's SHA-256 is computed while its large
/// values are written (on the core the write leaves free, from memory; libhdf5's own bytes
/// are read back), finished from the file on a thread of its own, and kept for the manifest
/// ([`crate::store::manifest::remember_written_partly`]).
pub fn write_file_for_artifact(path: &Path, root: &H5Group<'_>) -> Result<()> {
    #[cfg(feature = "h5")]
    {
        write::write_file_for_artifact(path, root)
    }
    #[cfg(not(feature = "h5"))]
    {
        let _ = (path, root);
        Err(no_hdf5())
    }
}

/// Bytes of a file written from one large value, and their CRC-32.
#[derive(Debug, Clone)]
pub struct RawRegion {
    /// Where they start in the file.
    pub offset: u64,
    /// How many.
    pub len: u64,
    /// Their CRC-32 (zip's) state.
    pub crc: crc32fast::Hasher,
}

/// Write `root` as HDF5 into the new file `file` (it must not exist; the caller removes it on
/// error and renames it into place), leaving its first `userblock` bytes (a power of two ≥ 512)
/// free for the caller: a `.keras` archive puts its first zip header there. `name` names the
/// file in messages. Returns the regions written from large values, in file order, with their
/// CRC-32s, computed alongside the write: the caller CRCs only the rest of the file.
pub fn write_with_userblock(
    file: &Path,
    name: &Path,
    root: &H5Group<'_>,
    userblock: u64,
) -> Result<Vec<RawRegion>> {
    #[cfg(feature = "h5")]
    {
        write::write_new(file, name, root, userblock, true)
    }
    #[cfg(not(feature = "h5"))]
    {
        let _ = (file, name, root, userblock);
        Err(no_hdf5())
    }
}

/// Makes a user block's bytes: see [`write_with_userblock_hashed`].
pub type MakeHead<'h> = dyn FnMut(&std::fs::File, &[RawRegion]) -> Result<Vec<u8>> + 'h;

/// [`write_with_userblock`], computing the file's SHA-256 front to back while its large values
/// are written. `head` makes the user block's bytes from the open file (libhdf5's part of it
/// written, the large values not yet) and the large values' regions with their CRC-32s
/// (computed from memory first); the digest covers those bytes in place of the user block,
/// and the caller writes them there. Returns the digest of the file's start, up to where it had
/// got when the values were all written (the caller finishes it from the file), or `None` if
/// the layout is not one the digest can follow (the caller then hashes the file afterwards).
pub(crate) fn write_with_userblock_hashed(
    file: &Path,
    name: &Path,
    root: &H5Group<'_>,
    userblock: u64,
    head: &mut MakeHead<'_>,
) -> Result<Option<crate::store::manifest::DigestSoFar>> {
    #[cfg(feature = "h5")]
    {
        write::write_new_hashed(file, name, root, userblock, head)
    }
    #[cfg(not(feature = "h5"))]
    {
        let _ = (file, name, root, userblock, head);
        Err(no_hdf5())
    }
}

/// Read the whole file at `path`: groups, attributes and every dataset's values.
pub fn read_file(path: &Path) -> Result<H5Group<'static>> {
    read_file_with(path, Values::All)
}

/// The file at `path` with the dataset values `values` asks for ([`read_file`] reads all,
/// [`read_structure`] none).
pub fn read_file_with(path: &Path, values: Values) -> Result<H5Group<'static>> {
    let len = precheck(path)?;
    #[cfg(feature = "h5")]
    {
        read::read_file(path, read::Input::File, len, values)
    }
    #[cfg(not(feature = "h5"))]
    {
        let _ = (len, values);
        Err(no_hdf5())
    }
}

/// [`read_file_with`] for a whole file held in memory, read in place (no copy, no temporary
/// file); `name` names it in messages, and deferred values' offsets are into `bytes`.
pub fn read_image(name: &Path, bytes: &[u8], values: Values) -> Result<H5Group<'static>> {
    let len = bytes.len() as u64;
    precheck_bytes(name, bytes, len, &bytes[..bytes.len().min(8)])?;
    #[cfg(feature = "h5")]
    {
        read::read_file(name, read::Input::Image(bytes), len, values)
    }
    #[cfg(not(feature = "h5"))]
    {
        let _ = values;
        Err(no_hdf5())
    }
}

/// Read names, attributes, dtypes, shapes and storage details, but no dataset values (for
/// `inspect`); datasets have `data: None`.
pub fn read_structure(path: &Path) -> Result<H5Group<'static>> {
    read_file_with(path, Values::Skip)
}

#[cfg(not(feature = "h5"))]
fn no_hdf5() -> Error {
    Error::invalid("kerasafe was built without HDF5 support (feature \"h5\")")
}

#[cfg(test)]
mod tests;
