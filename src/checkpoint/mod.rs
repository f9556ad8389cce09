//! TensorFlow tensor bundles: `PREFIX.index` + `PREFIX.data-NNNNN-of-MMMMM` (spec §1).
//!
//! [`write`] produces files TensorFlow reads, with an `.index` byte-identical to TF's for the same
//! tensors in the same order. [`BundleReader`] reads TF's files (any number of shards) with
//! positional reads straight into caller-owned buffers, verifying every CRC.

pub mod object_graph;
pub mod proto;
pub mod sstable;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use prost::Message;
use rayon::prelude::*;

use crate::error::{Error, FileContext, IoContext, Result};
use crate::file_bytes::ReadAt;
use crate::fsutil;
use crate::progress::Progress;
use crate::tensor::{byte_size, num_elements, DType, Tensor, TensorData};
use proto::{BundleEntryProto, BundleHeaderProto, Dim, TensorShapeProto, VersionDef};
use sstable::{mask_crc, put_varint64, unmask_crc};

/// The key TF2 object-based checkpoints store their `TrackableObjectGraph` under.
pub const OBJECT_GRAPH_KEY: &str = "_CHECKPOINTABLE_OBJECT_GRAPH";
/// Tensors above this size get their CRC computed in parallel chunks.
const CRC_CHUNK: usize = 8 << 20;
/// The most bytes of one tensor one thread CRCs in a go (larger tensors are split).
const CRC_JOB: usize = 16 << 20;
/// Refuse bundles that claim more shards than anyone writes.
const MAX_SHARDS: i32 = 100_000;
/// Read size of [`BundleReader::verify_many`]: small enough to stay in a core's cache between
/// the read and the CRC.
const VERIFY_CHUNK: usize = 1 << 20;

/// `PREFIX.index`.
pub fn index_path(prefix: &Path) -> PathBuf {
    fsutil::with_suffix(prefix, ".index")
}

/// `PREFIX.data-00003-of-00010`.
pub fn data_path(prefix: &Path, shard: i32, num_shards: i32) -> PathBuf {
    fsutil::with_suffix(prefix, &format!(".data-{shard:05}-of-{num_shards:05}"))
}

/// CRC-32C of `bytes`, split across threads for large buffers.
pub fn parallel_crc32c(bytes: &[u8]) -> u32 {
    if bytes.len() <= CRC_CHUNK {
        return crc32c::crc32c(bytes);
    }
    bytes
        .par_chunks(CRC_CHUNK)
        .map(|c| (crc32c::crc32c(c), c.len()))
        .collect::<Vec<_>>()
        .into_iter()
        .fold(0u32, |acc, (crc, len)| {
            crc32c::crc32c_combine(acc, crc, len)
        })
}

/// The serialized layout of one tensor in the data file: an optional header (string lengths and
/// their checksum) followed by payload pieces.
struct Serialized<'t> {
    head: Vec<u8>,
    pieces: Vec<&'t [u8]>,
    size: u64,
    /// Known up front for strings; computed during the write for raw bytes.
    crc: Option<u32>,
}

fn serialize<'t>(t: &'t Tensor<'_>) -> Result<Serialized<'t>> {
    match &t.data {
        TensorData::Bytes(b) => {
            let want = byte_size(t.dtype, &t.shape)?;
            if want != b.len() as u64 {
                return Err(Error::invalid(format!(
                    "{} tensor of shape {:?} needs {want} bytes, got {}",
                    t.dtype.name(),
                    t.shape,
                    b.len()
                )));
            }
            // The CRC is computed alongside the write ([`write`]).
            Ok(Serialized {
                head: Vec::new(),
                pieces: vec![b.as_ref()],
                size: b.len() as u64,
                crc: None,
            })
        }
        TensorData::Strings(items) => {
            if t.dtype != DType::String || num_elements(&t.shape)? != items.len() as u64 {
                return Err(Error::invalid(format!(
                    "string tensor of shape {:?} has {} elements",
                    t.shape,
                    items.len()
                )));
            }
            // Spec §1.6.2: varint lengths, masked crc of the lengths as 4/8-byte LE, then bytes.
            let mut head = Vec::new();
            let mut len_crc = 0u32;
            for s in items {
                put_varint64(&mut head, s.len() as u64);
                len_crc = match u32::try_from(s.len()) {
                    Ok(n) => crc32c::crc32c_append(len_crc, &n.to_le_bytes()),
                    Err(_) => crc32c::crc32c_append(len_crc, &(s.len() as u64).to_le_bytes()),
                };
            }
            // The entry CRC continues from the lengths' CRC (not from the varint bytes).
            let masked = mask_crc(len_crc).to_le_bytes();
            let mut crc = len_crc;
            head.extend_from_slice(&masked);
            crc = crc32c::crc32c_append(crc, &masked);
            let mut size = head.len() as u64;
            for s in items {
                crc = crc32c::crc32c_append(crc, s);
                size += s.len() as u64;
            }
            let crc = Some(crc);
            Ok(Serialized {
                head,
                pieces: items.iter().map(|s| s.as_ref()).collect(),
                size,
                crc,
            })
        }
    }
}

fn shape_proto(shape: &[u64]) -> TensorShapeProto {
    TensorShapeProto {
        dim: shape
            .iter()
            .map(|&d| Dim {
                size: d as i64,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    }
}

fn header_bytes(num_shards: i32) -> Vec<u8> {
    BundleHeaderProto {
        num_shards,
        endianness: 0,
        version: Some(VersionDef {
            producer: 1,
            min_consumer: 0,
            bad_consumers: vec![],
        }),
    }
    .encode_to_vec()
}

/// Write a single-shard bundle. Tensors go into the data file in the order given (as TF's
/// `BundleWriter` does with its `Add` calls); the index is sorted by name.
/// Both files are written under temporary names, then published together (see [`publish_pair`]).
pub fn write(prefix: &Path, tensors: &[(&str, Tensor<'_>)]) -> Result<()> {
    write_bundle(prefix, tensors, false)
}

/// [`write`] for an artifact being staged: the data file's SHA-256 is computed while it is
/// written, on another core, and kept for the artifact's manifest
/// ([`crate::store::manifest::remember_written`]) once the bundle is published, so the manifest
/// need not read the file back. The hash reads the tensors' buffers in a pass of its own (as the
/// CRCs do): they must not change while the call runs, as for [`write`] (kerasafe hands it
/// TensorFlow's buffers, which TF copies before any write while a view is held).
pub fn write_for_artifact(prefix: &Path, tensors: &[(&str, Tensor<'_>)]) -> Result<()> {
    write_bundle(prefix, tensors, true)
}

fn write_bundle(prefix: &Path, tensors: &[(&str, Tensor<'_>)], hash: bool) -> Result<()> {
    let mut names: Vec<&str> = tensors.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::invalid(format!(
            "tensor name {:?} given twice",
            w[0]
        )));
    }
    if names.first() == Some(&"") {
        return Err(Error::invalid(
            "the empty tensor name is reserved for the bundle header",
        ));
    }
    let serialized: Vec<Serialized<'_>> = tensors
        .par_iter()
        .map(|(name, t)| serialize(t).map_err(|e| prefix_msg(e, name)))
        .collect::<Result<_>>()?;

    let mut offsets = Vec::with_capacity(serialized.len());
    let mut total = 0u64;
    for s in &serialized {
        offsets.push(total);
        total += s.size;
    }

    let data_final = data_path(prefix, 0, 1);
    let index_final = index_path(prefix);
    if let Some(dir) = data_final.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).at(dir)?;
    }
    // One thread writes the file front to back (buffered writes to one file serialize on its
    // inode lock, so more writers only contend) while the others compute the CRCs, in jobs of
    // at most CRC_JOB bytes; a tensor's CRC combines its jobs' in order.
    let progress = Progress::current();
    progress.add_total(total);
    let mut jobs: Vec<(usize, Option<&[u8]>)> = Vec::new();
    for (i, s) in serialized.iter().enumerate() {
        match s.crc {
            Some(_) => jobs.push((i, None)), // strings: CRC known
            None => jobs.extend(s.pieces[0].chunks(CRC_JOB).map(|piece| (i, Some(piece)))),
        }
    }
    let mut job_crcs = Vec::new();
    let mut digest = None;
    let data_tmp = fsutil::write_temp(&data_final, |f| {
        f.set_len(total)?;
        let file: &File = f;
        let (written, (sha256, crcs)) = rayon::join(
            || -> std::io::Result<()> {
                let mut at = 0u64;
                for s in &serialized {
                    progress.write_all_at(file, &s.head, at)?;
                    at += s.head.len() as u64;
                    for p in &s.pieces {
                        progress.write_all_at(file, p, at)?;
                        at += p.len() as u64;
                    }
                }
                Ok(())
            },
            || {
                rayon::join(
                    // The data file's bytes in file order, exactly what the writer writes; first,
                    // as the longest job (the CRC jobs are stolen once the write is done).
                    || hash.then(|| sha256_of(&serialized)),
                    || {
                        jobs.par_iter()
                            .map(|&(i, piece)| match piece {
                                Some(bytes) => crc32c::crc32c(bytes),
                                None => serialized[i].crc.unwrap_or_default(),
                            })
                            .collect::<Vec<u32>>()
                    },
                )
            },
        );
        job_crcs = crcs;
        written?;
        if let Some(sha256) = sha256 {
            // The identity after the last write; the renames that publish the file keep it.
            digest = Some((file.metadata()?, sha256));
        }
        Ok(())
    })?;
    let mut crcs = vec![0u32; serialized.len()];
    for (&(i, piece), &crc) in jobs.iter().zip(&job_crcs) {
        crcs[i] = match piece {
            Some(bytes) => crc32c::crc32c_combine(crcs[i], crc, bytes.len()),
            None => crc,
        };
    }

    let mut entries: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    for (((name, t), s), (&offset, &crc)) in tensors
        .iter()
        .zip(&serialized)
        .zip(offsets.iter().zip(&crcs))
    {
        let entry = BundleEntryProto {
            dtype: t.dtype.tf_enum(),
            shape: Some(shape_proto(&t.shape)),
            shard_id: 0,
            offset: offset as i64,
            size: s.size as i64,
            crc32c: mask_crc(crc),
            slices: vec![],
        };
        entries.insert(name, entry.encode_to_vec());
    }
    let mut table = sstable::TableWriter::new();
    table.add(b"", &header_bytes(1))?;
    for (name, value) in &entries {
        table.add(name.as_bytes(), value)?;
    }
    let index = table.finish();
    let index_tmp = match fsutil::write_temp(&index_final, |f| f.write_all(&index)) {
        Ok(t) => t,
        Err(e) => {
            let _ = std::fs::remove_file(&data_tmp);
            return Err(e);
        }
    };
    publish_pair(prefix, &data_tmp, &index_tmp)?;
    if let Some((meta, sha256)) = digest {
        crate::store::manifest::remember_written(&data_final, &meta, &sha256);
    }
    Ok(())
}

/// SHA-256 of the data file `serialized` makes (each tensor's head, then its pieces).
fn sha256_of(serialized: &[Serialized<'_>]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for s in serialized {
        hasher.update(&s.head);
        for p in &s.pieces {
            hasher.update(p);
        }
    }
    hasher.finalize().into()
}

/// `PREFIX.kerasafe-commit`: while it exists, it names the temporary data and index files that
/// replace the bundle at `PREFIX`.
pub fn commit_record_path(prefix: &Path) -> PathBuf {
    fsutil::with_suffix(prefix, ".kerasafe-commit")
}

/// Replace the pair at `prefix` by two complete temporaries, so that a crash at any point leaves
/// either the old pair or (after [`recover`]) the new one, never the new data under the old
/// index. The commit record is written (atomically) once both temporaries are complete; the two
/// renames follow; the record is removed last. A crash before the record leaves the old pair
/// and stray temporaries; a crash after it is rolled forward by the next [`recover`], which
/// every [`BundleReader::open`] runs. No fsync: this guards against process crashes, as TF's own
/// writer does not fsync either; power-loss durability is the artifact store's job.
fn publish_pair(prefix: &Path, data_tmp: &Path, index_tmp: &Path) -> Result<()> {
    let record = commit_record_path(prefix);
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    let body = format!(
        "{}\n{}\n",
        name(data_tmp).unwrap_or_default(),
        name(index_tmp).unwrap_or_default()
    );
    if let Err(e) = fsutil::write_atomically(&record, |f| f.write_all(body.as_bytes())) {
        let _ = std::fs::remove_file(data_tmp);
        let _ = std::fs::remove_file(index_tmp);
        return Err(e);
    }
    roll_forward(prefix, &record, &body)
}

/// Finish a write that a crash interrupted after its commit record landed (see
/// [`publish_pair`]). Returns whether there was one. A record that names anything but this
/// prefix's own temporaries is a format error and renames nothing.
pub fn recover(prefix: &Path) -> Result<bool> {
    let record = commit_record_path(prefix);
    let body = match std::fs::read(&record) {
        Ok(b) if b.len() <= 4096 => String::from_utf8_lossy(&b).into_owned(),
        Ok(_) => return Err(Error::format_in(&record, "commit record larger than 4 KiB")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(&record, e)),
    };
    roll_forward(prefix, &record, &body)?;
    Ok(true)
}

fn roll_forward(prefix: &Path, record: &Path, body: &str) -> Result<()> {
    let lines: Vec<&str> = body.lines().collect();
    let [data_tmp, index_tmp] = lines.as_slice() else {
        return Err(Error::format_in(record, "malformed commit record"));
    };
    let dir = prefix.parent().unwrap_or(Path::new(""));
    for (tmp, fin) in [
        (*data_tmp, data_path(prefix, 0, 1)),
        (*index_tmp, index_path(prefix)),
    ] {
        if !fsutil::is_temp_sibling_name(&fin, tmp) {
            return Err(Error::format_in(
                record,
                format!(
                    "commit record names {tmp:?}, not a temporary of {}",
                    fin.display()
                ),
            ));
        }
        match fsutil::replace(&dir.join(tmp), &fin) {
            // NotFound: already renamed (by the writer, or by a reader that rolled forward).
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&fin, e)),
        }
    }
    match std::fs::remove_file(record) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(record, e)),
    }
}

fn prefix_msg(e: Error, name: &str) -> Error {
    match e {
        Error::InvalidArgument { msg } => Error::invalid(format!("tensor {name:?}: {msg}")),
        other => other,
    }
}

/// One dimension of a slice of a partitioned tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// First index.
    pub start: u64,
    /// Number of indices.
    pub len: u64,
    /// Whether the file gave the length (absent means "the whole dimension"); it changes the key.
    pub explicit: bool,
}

/// One tensor as the index describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Tensor name (the index key).
    pub name: String,
    /// TensorFlow dtype enum value as stored.
    pub dtype_enum: i32,
    /// The dtype, when kerasafe can hold it.
    pub dtype: Option<DType>,
    /// Dimensions.
    pub shape: Vec<u64>,
    /// Which data file.
    pub shard_id: i32,
    /// Byte offset in that file.
    pub offset: u64,
    /// Byte length.
    pub size: u64,
    /// Unmasked CRC-32C of the bytes.
    pub crc32c: u32,
    /// True for partitioned tensors, whose values live under slice keys.
    pub sliced: bool,
    /// For partitioned tensors: each slice's extent per dimension.
    pub slices: Vec<Vec<Extent>>,
}

impl Entry {
    /// A buffer of `len` bytes can receive this tensor: a fixed-size dtype, exactly its size.
    pub fn check_buffer(&self, len: usize) -> Result<()> {
        if self.dtype.and_then(DType::size).is_none() {
            return Err(Error::invalid(format!(
                "tensor {:?} is {}, not a fixed-size type",
                self.name,
                self.dtype_name()
            )));
        }
        if len as u64 != self.size {
            return Err(Error::invalid(format!(
                "tensor {:?} has {} bytes, buffer has {len}",
                self.name, self.size
            )));
        }
        Ok(())
    }

    /// The dtype name for listings (`"float32"`, or `"DT_<n>"` for types kerasafe cannot hold).
    pub fn dtype_name(&self) -> String {
        match self.dtype {
            Some(d) => d.name().to_string(),
            None if self.dtype_enum == 21 => "variant".to_string(),
            None => format!("dtype_enum_{}", self.dtype_enum),
        }
    }
}

fn byte_size_of(shape: &[u64], elem: usize) -> Result<u64> {
    num_elements(shape)?
        .checked_mul(elem as u64)
        .ok_or_else(|| Error::format(format!("a tensor of shape {shape:?} is too large")))
}

/// TF's `EncodeTensorNameSlice` (OrderedCode): the index key of one slice of `name`.
pub fn slice_key(name: &str, extents: &[Extent]) -> Vec<u8> {
    let mut key = vec![0u8]; // WriteNumIncreasing(0)
    for &b in name.as_bytes() {
        match b {
            0x00 => key.extend_from_slice(&[0x00, 0xff]),
            0xff => key.extend_from_slice(&[0xff, 0x00]),
            _ => key.push(b),
        }
    }
    key.extend_from_slice(&[0x00, 0x01]);
    let rank = extents.len() as u64;
    let rank_bytes = rank.to_be_bytes();
    let skip = rank_bytes.iter().take_while(|&&b| b == 0).count();
    key.push((8 - skip) as u8);
    key.extend_from_slice(&rank_bytes[skip..]);
    for x in extents {
        // An extent without a length (the whole dimension) is encoded as length -1.
        write_signed_increasing(&mut key, x.start as i64);
        write_signed_increasing(&mut key, if x.explicit { x.len as i64 } else { -1 });
    }
    key
}

/// OrderedCode `WriteSignedNumIncreasing`.
fn write_signed_increasing(out: &mut Vec<u8>, val: i64) {
    const HEADER: [[u8; 2]; 11] = [
        [0, 0],
        [0x80, 0],
        [0xc0, 0],
        [0xe0, 0],
        [0xf0, 0],
        [0xf8, 0],
        [0xfc, 0],
        [0xfe, 0],
        [0xff, 0],
        [0xff, 0x80],
        [0xff, 0xc0],
    ];
    let x = if val < 0 { !(val as u64) } else { val as u64 };
    if x < 64 {
        out.push(HEADER[1][0] ^ (val as u8));
        return;
    }
    let bits = 64 - x.leading_zeros() as usize; // Log2Floor(x) + 1
    let len = if bits >= 63 { 10 } else { bits / 7 + 1 };
    let sign = if val < 0 { 0xff } else { 0 };
    let mut buf = [sign; 10];
    buf[2..].copy_from_slice(&val.to_be_bytes());
    let begin = &mut buf[10 - len..];
    begin[0] ^= HEADER[len][0];
    begin[1] ^= HEADER[len][1];
    out.extend_from_slice(begin);
}

/// Copy a row-major slice (`src`, shaped by the extents' lengths) into the full tensor `dst`.
fn scatter_slice(dst: &mut [u8], shape: &[u64], extents: &[Extent], src: &[u8], elem: usize) {
    let extents: Vec<(u64, u64)> = extents.iter().map(|x| (x.start, x.len)).collect();
    if extents.iter().any(|&(_, l)| l == 0) {
        return;
    }
    if shape.is_empty() {
        dst[..elem].copy_from_slice(&src[..elem]);
        return;
    }
    let rank = shape.len();
    let run = extents[rank - 1].1 as usize * elem;
    let mut strides = vec![elem as u64; rank];
    for d in (0..rank - 1).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    let mut idx = vec![0u64; rank - 1]; // position within the slice, outer dims
    let mut src_off = 0usize;
    loop {
        let mut dst_off = extents[rank - 1].0 * strides[rank - 1];
        for d in 0..rank - 1 {
            dst_off += (extents[d].0 + idx[d]) * strides[d];
        }
        let dst_off = dst_off as usize;
        dst[dst_off..dst_off + run].copy_from_slice(&src[src_off..src_off + run]);
        src_off += run;
        // odometer over the outer dims
        let mut d = rank - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < extents[d].1 {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// Slices must cover the tensor exactly once: disjoint boxes whose sizes add up to the whole.
fn check_slices_tile(name: &str, shape: &[u64], slices: &[Vec<Extent>]) -> Result<()> {
    let total: u128 = slices
        .iter()
        .map(|s| s.iter().map(|x| u128::from(x.len)).product::<u128>())
        .sum();
    let disjoint = |a: &Vec<Extent>, b: &Vec<Extent>| {
        a.iter()
            .zip(b)
            .any(|(x, y)| x.start + x.len <= y.start || y.start + y.len <= x.start)
    };
    let overlap =
        (0..slices.len()).any(|i| (i + 1..slices.len()).any(|j| !disjoint(&slices[i], &slices[j])));
    if overlap || total != u128::from(num_elements(shape)?) {
        return Err(Error::format(format!(
            "entry {name:?}: its slices do not tile the shape {shape:?}"
        )));
    }
    Ok(())
}

fn parse_entry(name: String, value: &[u8], num_shards: i32) -> Result<Entry> {
    let p = BundleEntryProto::decode(value).map_err(|e| {
        Error::format(format!(
            "entry {name:?} is not a valid BundleEntryProto: {e}"
        ))
    })?;
    let shape_proto = p.shape.unwrap_or_default();
    if shape_proto.unknown_rank {
        return Err(Error::format(format!(
            "entry {name:?} has a shape of unknown rank"
        )));
    }
    let shape = shape_proto
        .dim
        .iter()
        .map(|d| u64::try_from(d.size))
        .collect::<Result<Vec<u64>, _>>()
        .map_err(|_| Error::format(format!("entry {name:?} has a negative dimension")))?;
    num_elements(&shape).map_err(|e| Error::format(format!("entry {name:?}: {e}")))?;
    let sliced = !p.slices.is_empty();
    let mut slices = Vec::with_capacity(p.slices.len());
    for slice in &p.slices {
        if slice.extent.len() != shape.len() {
            return Err(Error::format(format!(
                "entry {name:?}: a slice has {} extents for a rank-{} tensor",
                slice.extent.len(),
                shape.len()
            )));
        }
        let mut ext = Vec::with_capacity(shape.len());
        for (x, &dim) in slice.extent.iter().zip(&shape) {
            let start = u64::try_from(x.start).ok();
            let len = match x.length {
                None => start.map(|s| dim.saturating_sub(s)),
                Some(l) => u64::try_from(l).ok(),
            };
            match (start, len) {
                (Some(s), Some(l)) if s.checked_add(l).is_some_and(|e| e <= dim) => {
                    ext.push(Extent {
                        start: s,
                        len: l,
                        explicit: x.length.is_some(),
                    })
                }
                _ => {
                    return Err(Error::format(format!(
                        "entry {name:?}: slice extent {}+{:?} lies outside dimension {dim}",
                        x.start, x.length
                    )))
                }
            }
        }
        slices.push(ext);
    }
    if sliced {
        check_slices_tile(&name, &shape, &slices)?;
    }
    let (offset, size) = match (u64::try_from(p.offset), u64::try_from(p.size)) {
        (Ok(o), Ok(s)) => (o, s),
        _ => {
            return Err(Error::format(format!(
                "entry {name:?} has a negative offset or size"
            )))
        }
    };
    if !sliced && (p.shard_id < 0 || p.shard_id >= num_shards) {
        return Err(Error::format(format!(
            "entry {name:?} is in shard {} but the bundle has {num_shards} shard(s)",
            p.shard_id
        )));
    }
    let dtype = DType::from_tf_enum(p.dtype);
    if let (Some(d), false) = (dtype, sliced) {
        if let Some(elem) = d.size() {
            let want = num_elements(&shape)?.checked_mul(elem as u64);
            if want != Some(size) {
                return Err(Error::format(format!(
                    "entry {name:?}: a {} tensor of shape {shape:?} needs {} bytes but the index says {size}",
                    d.name(),
                    want.map_or("too many".to_string(), |w| w.to_string())
                )));
            }
        } else if size < num_elements(&shape)? {
            return Err(Error::format(format!(
                "entry {name:?}: string tensor size {size} is too small"
            )));
        }
    }
    // A partitioned tensor's own entry carries no bytes; report its logical size.
    let size = match (sliced, dtype.and_then(DType::size)) {
        (true, Some(elem)) => byte_size_of(&shape, elem)?,
        _ => size,
    };
    Ok(Entry {
        name,
        dtype_enum: p.dtype,
        dtype,
        shape,
        shard_id: p.shard_id,
        offset,
        size,
        crc32c: unmask_crc(p.crc32c),
        sliced,
        slices,
    })
}

struct Shard {
    file: File,
    len: u64,
    path: PathBuf,
}

/// An opened bundle: the parsed index, and data files opened on first use.
pub struct BundleReader {
    prefix: PathBuf,
    index_path: PathBuf,
    num_shards: i32,
    entries: BTreeMap<String, Entry>,
    slice_entries: HashMap<Vec<u8>, Entry>,
    shards: Vec<OnceLock<Result<Shard, String>>>,
}

impl std::fmt::Debug for BundleReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleReader")
            .field("prefix", &self.prefix)
            .field("num_shards", &self.num_shards)
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl BundleReader {
    /// Open `PREFIX.index` and parse every entry; data files are not touched yet.
    pub fn open(prefix: impl AsRef<Path>) -> Result<Self> {
        let prefix = prefix.as_ref().to_path_buf();
        // Best effort: a read-only directory or a bad record leaves the files as they are, and
        // a mixed pair then fails its CRC checks.
        let _ = recover(&prefix);
        let index_path = index_path(&prefix);
        let bytes = std::fs::read(&index_path).at(&index_path)?;
        Self::from_index_bytes(&prefix, &bytes).in_file(&index_path)
    }

    /// Parse index bytes for the bundle at `prefix`.
    pub fn from_index_bytes(prefix: &Path, bytes: &[u8]) -> Result<Self> {
        let table = sstable::read_table(bytes)?;
        let mut it = table.into_iter();
        let header = match it.next() {
            Some((k, v)) if k.is_empty() => BundleHeaderProto::decode(v).map_err(|e| {
                Error::format(format!(
                    "bundle header is not a valid BundleHeaderProto: {e}"
                ))
            })?,
            _ => return Err(Error::format("the index has no bundle header (empty key)")),
        };
        if header.endianness != 0 {
            return Err(Error::format("big-endian checkpoints are not supported"));
        }
        if let Some(v) = &header.version {
            if v.producer < 0 || v.min_consumer > 1 || v.bad_consumers.contains(&1) {
                return Err(Error::format(format!(
                    "bundle version (producer {}, min_consumer {}) is not readable by format version 1",
                    v.producer, v.min_consumer
                )));
            }
        }
        if header.num_shards < 1 || header.num_shards > MAX_SHARDS {
            return Err(Error::format(format!(
                "bundle header declares {} shards",
                header.num_shards
            )));
        }
        let mut entries = BTreeMap::new();
        let mut slice_entries = HashMap::new();
        for (key, value) in it {
            if key.first() == Some(&0) {
                // A slice of a partitioned tensor, under an OrderedCode-encoded key.
                let label = format!("slice {}", String::from_utf8_lossy(&key[1..]));
                slice_entries.insert(key, parse_entry(label, value, header.num_shards)?);
                continue;
            }
            let name = String::from_utf8(key).map_err(|e| {
                Error::format(format!(
                    "tensor name {:?} is not UTF-8",
                    String::from_utf8_lossy(e.as_bytes())
                ))
            })?;
            let entry = parse_entry(name.clone(), value, header.num_shards)?;
            entries.insert(name, entry);
        }
        let shards = (0..header.num_shards).map(|_| OnceLock::new()).collect();
        Ok(BundleReader {
            index_path: index_path(prefix),
            prefix: prefix.to_path_buf(),
            num_shards: header.num_shards,
            entries,
            slice_entries,
            shards,
        })
    }

    /// The bundle prefix.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// Number of data files.
    pub fn num_shards(&self) -> i32 {
        self.num_shards
    }

    /// Every entry, sorted by name.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// The entry named `name`.
    pub fn entry(&self, name: &str) -> Result<&Entry> {
        self.entries.get(name).ok_or_else(|| Error::Format {
            at: crate::error::Location(Some(self.index_path.clone())),
            msg: format!("no tensor named {name:?} in the checkpoint"),
        })
    }

    fn shard(&self, id: i32) -> Result<&Shard> {
        let cell = &self.shards[id as usize];
        let r = cell.get_or_init(|| {
            let path = data_path(&self.prefix, id, self.num_shards);
            File::open(&path)
                .and_then(|file| {
                    Ok(Shard {
                        len: file.metadata()?.len(),
                        file,
                        path: path.clone(),
                    })
                })
                .map_err(|e| Error::io(&path, e).to_string())
        });
        r.as_ref().map_err(|msg| {
            let path = data_path(&self.prefix, id, self.num_shards);
            let kind = if path.exists() {
                std::io::ErrorKind::Other
            } else {
                std::io::ErrorKind::NotFound
            };
            Error::Io {
                path,
                source: std::io::Error::new(kind, msg.clone()),
            }
        })
    }

    /// Check an entry's range against its data file and return the file.
    fn locate(&self, e: &Entry) -> Result<&Shard> {
        if e.sliced {
            return Err(Error::Format {
                at: crate::error::Location(Some(self.index_path.clone())),
                msg: format!(
                    "tensor {:?} is partitioned into slices; read it with read_into",
                    e.name
                ),
            });
        }
        let shard = self.shard(e.shard_id)?;
        if e.offset
            .checked_add(e.size)
            .is_none_or(|end| end > shard.len)
        {
            return Err(Error::format_in(
                &shard.path,
                format!(
                    "tensor {:?} claims bytes {}..{} but the data file has {} bytes (truncated?)",
                    e.name,
                    e.offset,
                    e.offset.saturating_add(e.size),
                    shard.len
                ),
            ));
        }
        Ok(shard)
    }

    fn checksum_error(&self, shard: &Shard, e: &Entry, actual: u32) -> Error {
        Error::Checksum {
            at: crate::error::Location(Some(shard.path.clone())),
            what: format!("tensor {:?}", e.name),
            detail: format!("stored crc32c {:#010x}, computed {actual:#010x}", e.crc32c),
        }
    }

    /// Read a fixed-size tensor's bytes into `out` (which must be exactly `size` bytes) and
    /// verify its CRC.
    pub fn read_into(&self, name: &str, out: &mut [u8]) -> Result<()> {
        let progress = Progress::current();
        progress.add_total(out.len() as u64);
        self.read_into_counted(name, out, &progress)
    }

    /// [`read_into`](Self::read_into) reporting to `progress`, whose total the caller set.
    fn read_into_counted(&self, name: &str, out: &mut [u8], progress: &Progress) -> Result<()> {
        let e = self.entry(name)?;
        e.check_buffer(out.len())?;
        if e.sliced {
            return self.read_slices_into(e, out, progress);
        }
        let shard = self.locate(e)?;
        progress
            .read_exact_at(&shard.file, out, e.offset)
            .at(&shard.path)?;
        let actual = parallel_crc32c(out);
        if actual != e.crc32c {
            return Err(self.checksum_error(shard, e, actual));
        }
        Ok(())
    }

    /// Assemble a partitioned tensor from its slices (spec §1.5.3).
    fn read_slices_into(&self, e: &Entry, out: &mut [u8], progress: &Progress) -> Result<()> {
        let elem = e.dtype.and_then(DType::size).unwrap_or(1);
        for extents in &e.slices {
            let key = slice_key(&e.name, extents);
            let s = self.slice_entries.get(&key).ok_or_else(|| {
                Error::format_in(
                    &self.index_path,
                    format!(
                        "tensor {:?}: slice {extents:?} is missing from the index",
                        e.name
                    ),
                )
            })?;
            let lens: Vec<u64> = extents.iter().map(|x| x.len).collect();
            if s.dtype_enum != e.dtype_enum || s.shape != lens || s.sliced {
                return Err(Error::format_in(
                    &self.index_path,
                    format!(
                        "tensor {:?}: slice {extents:?} has dtype/shape {}/{:?}",
                        e.name,
                        s.dtype_name(),
                        s.shape
                    ),
                ));
            }
            let shard = self.locate(s)?;
            let mut buf = vec![0u8; s.size as usize];
            progress
                .read_exact_at(&shard.file, &mut buf, s.offset)
                .at(&shard.path)?;
            let actual = parallel_crc32c(&buf);
            if actual != s.crc32c {
                let what = Entry {
                    name: format!("{} slice {extents:?}", e.name),
                    ..s.clone()
                };
                return Err(self.checksum_error(shard, &what, actual));
            }
            scatter_slice(out, &e.shape, extents, &buf, elem);
        }
        Ok(())
    }

    /// [`read_into`](Self::read_into) for many tensors at once, in parallel.
    pub fn read_many_into(&self, jobs: Vec<(&str, &mut [u8])>) -> Result<()> {
        // The whole batch is announced up front, so a reporter's total is right from the start.
        let progress = Progress::current();
        progress.add_total(jobs.iter().map(|(_, out)| out.len() as u64).sum());
        jobs.into_par_iter()
            .try_for_each(|(name, out)| self.read_into_counted(name, out, &progress))
    }

    /// Check the stored CRC of every named tensor without handing out its bytes: a caller that
    /// is about to read tensors straight into memory it cannot restore (a model's variables)
    /// learns of a damaged file before the first byte lands there. Reads through a small
    /// buffer per thread; slices of partitioned tensors are checked each against its own CRC.
    pub fn verify_many(&self, names: &[&str]) -> Result<()> {
        let mut pieces: Vec<&Entry> = Vec::with_capacity(names.len());
        for name in names {
            let e = self.entry(name)?;
            if e.sliced {
                for extents in &e.slices {
                    let key = slice_key(&e.name, extents);
                    match self.slice_entries.get(&key) {
                        Some(s) => pieces.push(s),
                        // Reported, with its context, by the read that follows.
                        None => continue,
                    }
                }
            } else {
                pieces.push(e);
            }
        }
        pieces.into_par_iter().try_for_each(|e| {
            let shard = self.locate(e)?;
            let mut scratch = vec![0u8; VERIFY_CHUNK.min(e.size as usize)];
            let (mut crc, mut at, end) = (0u32, e.offset, e.offset + e.size);
            while at < end {
                let piece = &mut scratch[..(end - at).min(VERIFY_CHUNK as u64) as usize];
                shard.file.read_exact_at(piece, at).at(&shard.path)?;
                crc = crc32c::crc32c_append(crc, piece);
                at += piece.len() as u64;
            }
            if crc != e.crc32c {
                return Err(self.checksum_error(shard, e, crc));
            }
            Ok(())
        })
    }

    /// Read the raw serialized bytes of any entry (also variant tensors). Numeric tensors are
    /// CRC-checked here; string tensors when decoded.
    pub fn read_raw(&self, name: &str) -> Result<Vec<u8>> {
        let e = self.entry(name)?;
        let shard = self.locate(e)?;
        let size = usize::try_from(e.size)
            .map_err(|_| Error::format_in(&shard.path, "tensor too large"))?;
        let mut buf = vec![0u8; size];
        let progress = Progress::current();
        progress.add_total(e.size);
        progress
            .read_exact_at(&shard.file, &mut buf, e.offset)
            .at(&shard.path)?;
        if e.dtype != Some(DType::String) {
            let actual = parallel_crc32c(&buf);
            if actual != e.crc32c {
                return Err(self.checksum_error(shard, e, actual));
            }
        }
        Ok(buf)
    }

    /// Read a `DT_STRING` tensor: one byte string per element.
    pub fn read_strings(&self, name: &str) -> Result<Vec<Vec<u8>>> {
        let e = self.entry(name)?;
        if e.dtype != Some(DType::String) {
            return Err(Error::invalid(format!(
                "tensor {name:?} is {}, not string",
                e.dtype_name()
            )));
        }
        let raw = self.read_raw(name)?;
        let shard = self.locate(e)?;
        let (strings, crc) = decode_strings(&raw, num_elements(&e.shape)?).map_err(|err| {
            Error::format_in(&shard.path, format!("string tensor {name:?}: {err}"))
        })?;
        if crc != e.crc32c {
            return Err(self.checksum_error(shard, e, crc));
        }
        Ok(strings)
    }

    /// Read any tensor into an owned [`Tensor`].
    pub fn read(&self, name: &str) -> Result<Tensor<'static>> {
        let e = self.entry(name)?;
        let dtype = e.dtype.ok_or_else(|| {
            Error::invalid(format!(
                "tensor {name:?} has dtype {}, which kerasafe cannot hold",
                e.dtype_name()
            ))
        })?;
        let data = if dtype == DType::String {
            TensorData::Strings(
                self.read_strings(name)?
                    .into_iter()
                    .map(Cow::Owned)
                    .collect(),
            )
        } else {
            let mut buf = vec![0u8; e.size as usize];
            self.read_into(name, &mut buf)?;
            TensorData::Bytes(Cow::Owned(buf))
        };
        Ok(Tensor {
            dtype,
            shape: e.shape.clone(),
            data,
        })
    }
}

/// Decode the §1.6.2 string layout of `n` elements from `raw`; returns the strings and the
/// entry CRC they imply.
pub(crate) fn decode_strings(raw: &[u8], n: u64) -> Result<(Vec<Vec<u8>>, u32)> {
    if n > raw.len() as u64 {
        return Err(Error::format(format!(
            "{n} elements cannot fit in {} bytes",
            raw.len()
        )));
    }
    let mut lens = Vec::with_capacity(n as usize);
    let mut p = 0usize;
    let mut crc = 0u32;
    for _ in 0..n {
        let (len, used) = sstable::get_varint64(&raw[p..])?;
        p += used;
        crc = match u32::try_from(len) {
            Ok(l) => crc32c::crc32c_append(crc, &l.to_le_bytes()),
            Err(_) => crc32c::crc32c_append(crc, &len.to_le_bytes()),
        };
        lens.push(len);
    }
    let stored = raw
        .get(p..p + 4)
        .ok_or_else(|| Error::format("truncated length checksum"))?;
    if unmask_crc(u32::from_le_bytes(stored.try_into().expect("4 bytes"))) != crc {
        return Err(Error::format("string length checksum mismatch"));
    }
    crc = crc32c::crc32c_append(crc, stored);
    p += 4;
    let mut out = Vec::with_capacity(n as usize);
    for len in lens {
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| p.checked_add(l))
            .filter(|&e| e <= raw.len());
        let end = end.ok_or_else(|| {
            Error::format(format!("string of {len} bytes runs past the tensor's end"))
        })?;
        crc = crc32c::crc32c_append(crc, &raw[p..end]);
        out.push(raw[p..end].to_vec());
        p = end;
    }
    if p != raw.len() {
        return Err(Error::format(format!(
            "{} trailing bytes after the strings",
            raw.len() - p
        )));
    }
    Ok((out, crc))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spec §1.7: TF's `SaveV2(["x", "a/s"], [float32 [1, 2], string ["hi"]])`.
    const GOLDEN_INDEX: &str = "
        00 00 06 08 01 1a 02 08 01 00 03 11 61 2f 73 08
        07 12 04 12 02 08 01 20 08 28 07 35 09 eb 4d 15
        00 01 0f 78 08 01 12 04 12 02 08 02 28 08 35 59
        3c e5 35 00 00 00 00 01 00 00 00 00 1d ef ed 95
        00 00 00 00 01 00 00 00 00 c0 f2 a1 b0 00 01 02
        79 00 3b 00 00 00 00 01 00 00 00 00 f1 31 1d b4
        40 08 4d 0e";
    const GOLDEN_DATA: &str = "0000803f00000040 02d8d81073 6869";

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn f32_tensor(v: f32) -> Tensor<'static> {
        Tensor {
            dtype: DType::F32,
            shape: vec![2],
            data: TensorData::Bytes(Cow::Owned(
                [v, v].iter().flat_map(|x| x.to_le_bytes()).collect(),
            )),
        }
    }

    fn generation(prefix: &Path) -> f32 {
        let t = BundleReader::open(prefix).unwrap().read("w").unwrap();
        let TensorData::Bytes(b) = t.data else {
            panic!("not bytes")
        };
        f32::from_le_bytes(b[..4].try_into().unwrap())
    }

    #[test]
    fn verify_checks_crcs_without_reading_out() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("ckpt");
        // One tensor larger than VERIFY_CHUNK, so its CRC is carried across reads.
        let big: Vec<u8> = (0..VERIFY_CHUNK * 2 + 12)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let big = Tensor {
            dtype: DType::U8,
            shape: vec![big.len() as u64],
            data: TensorData::Bytes(Cow::Owned(big)),
        };
        write(&prefix, &[("big", big), ("w", f32_tensor(3.0))]).unwrap();
        let reader = BundleReader::open(&prefix).unwrap();
        reader.verify_many(&["big", "w"]).unwrap();
        assert!(matches!(
            reader.verify_many(&["nope"]),
            Err(Error::Format { .. })
        ));
        // A flipped byte in the second chunk of "big": a checksum error naming it and the file.
        let data = data_path(&prefix, 0, 1);
        let mut bytes = std::fs::read(&data).unwrap();
        let at = reader.entry("big").unwrap().offset as usize + VERIFY_CHUNK + 5;
        bytes[at] ^= 1;
        std::fs::write(&data, &bytes).unwrap();
        let reader = BundleReader::open(&prefix).unwrap();
        reader.verify_many(&["w"]).unwrap();
        match reader.verify_many(&["w", "big"]) {
            Err(Error::Checksum { at, what, .. }) => {
                assert_eq!(at.0.as_deref(), Some(data.as_path()));
                assert!(what.contains("big"), "{what}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// Every state a crash can leave between the two temporaries and the record's removal
    /// reads as the old pair or as the new one.
    #[test]
    fn interrupted_writes_read_as_the_old_or_the_new_pair() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("ckpt");
        write(&prefix, &[("w", f32_tensor(1.0))]).unwrap();
        let new_pair = dir.path().join("new");
        write(&new_pair, &[("w", f32_tensor(2.0))]).unwrap();
        let stage = |name: &Path, fin: &Path| {
            let tmp = fsutil::temp_sibling(fin);
            std::fs::copy(name, &tmp).unwrap();
            tmp
        };
        for renamed in 0..3 {
            write(&prefix, &[("w", f32_tensor(1.0))]).unwrap();
            let data_tmp = stage(&data_path(&new_pair, 0, 1), &data_path(&prefix, 0, 1));
            let index_tmp = stage(&index_path(&new_pair), &index_path(&prefix));
            // Crashed before the record: the old pair, temporaries left over.
            assert_eq!(generation(&prefix), 1.0);
            let record = format!(
                "{}\n{}\n",
                data_tmp.file_name().unwrap().to_string_lossy(),
                index_tmp.file_name().unwrap().to_string_lossy()
            );
            std::fs::write(commit_record_path(&prefix), record).unwrap();
            // Crashed after 0, 1 or 2 of the renames.
            if renamed >= 1 {
                std::fs::rename(&data_tmp, data_path(&prefix, 0, 1)).unwrap();
            }
            if renamed >= 2 {
                std::fs::rename(&index_tmp, index_path(&prefix)).unwrap();
            }
            assert_eq!(generation(&prefix), 2.0, "after {renamed} renames");
            assert!(!commit_record_path(&prefix).exists());
        }
    }

    #[test]
    fn a_hostile_commit_record_renames_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("ckpt");
        write(&prefix, &[("w", f32_tensor(1.0))]).unwrap();
        std::fs::write(dir.path().join("victim"), b"x").unwrap();
        std::fs::write(commit_record_path(&prefix), "victim\nvictim\n").unwrap();
        let err = recover(&prefix).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{err}");
        assert!(dir.path().join("victim").exists());
        assert_eq!(generation(&prefix), 1.0);
    }

    fn golden_index() -> Vec<u8> {
        let mut v = hex(GOLDEN_INDEX);
        v.resize(136, 0);
        v.extend_from_slice(&sstable::MAGIC.to_le_bytes());
        v
    }

    fn golden_tensors() -> Vec<(&'static str, Tensor<'static>)> {
        let x: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|f| f.to_le_bytes()).collect();
        vec![
            (
                "x",
                Tensor {
                    dtype: DType::F32,
                    shape: vec![2],
                    data: TensorData::Bytes(Cow::Owned(x)),
                },
            ),
            (
                "a/s",
                Tensor {
                    dtype: DType::String,
                    shape: vec![1],
                    data: TensorData::Strings(vec![Cow::Borrowed(b"hi")]),
                },
            ),
        ]
    }

    #[test]
    fn writes_the_golden_vector() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("t");
        write(&prefix, &golden_tensors()).unwrap();
        assert_eq!(std::fs::read(index_path(&prefix)).unwrap(), golden_index());
        assert_eq!(
            std::fs::read(data_path(&prefix, 0, 1)).unwrap(),
            hex(GOLDEN_DATA)
        );
    }

    #[test]
    fn reads_the_golden_vector() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("t");
        std::fs::write(index_path(&prefix), golden_index()).unwrap();
        std::fs::write(data_path(&prefix, 0, 1), hex(GOLDEN_DATA)).unwrap();
        let r = BundleReader::open(&prefix).unwrap();
        let names: Vec<_> = r.entries().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a/s", "x"]);
        assert_eq!(r.read("x").unwrap(), golden_tensors()[0].1);
        assert_eq!(r.read_strings("a/s").unwrap(), vec![b"hi".to_vec()]);
    }

    #[test]
    fn string_layout_matches_spec_example() {
        let t = Tensor {
            dtype: DType::String,
            shape: vec![3],
            data: TensorData::Strings(vec![
                Cow::Borrowed(b"ab"),
                Cow::Borrowed(b""),
                Cow::Borrowed(b"hello/world"),
            ]),
        };
        let s = serialize(&t).unwrap();
        assert_eq!(s.head, hex("02000b a3a64892"));
        assert_eq!(s.size, 20);
    }

    #[test]
    fn duplicate_and_empty_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let t = golden_tensors().remove(0).1;
        let err = write(&dir.path().join("p"), &[("a", t.clone()), ("a", t.clone())]).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
        assert!(write(&dir.path().join("p"), &[("", t)]).is_err());
    }

    #[test]
    fn ordered_code_signed_numbers() {
        let enc = |v: i64| {
            let mut out = Vec::new();
            write_signed_increasing(&mut out, v);
            out
        };
        assert_eq!(enc(0), [0x80]);
        assert_eq!(enc(-1), [0x7f]);
        assert_eq!(enc(63), [0xbf]);
        assert_eq!(enc(64), [0xc0, 0x40]);
        assert_eq!(enc(-65), [0x3f, 0xbf]);
        // Encodings sort like the numbers they encode.
        let nums = [
            i64::MIN,
            -70000,
            -65,
            -64,
            -1,
            0,
            1,
            63,
            64,
            8191,
            8192,
            1 << 40,
            i64::MAX,
        ];
        let encoded: Vec<Vec<u8>> = nums.iter().map(|&v| enc(v)).collect();
        assert!(encoded.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn scatter_places_a_slice() {
        let mut dst = vec![0u8; 12];
        let x = |start, len| Extent {
            start,
            len,
            explicit: true,
        };
        scatter_slice(&mut dst, &[3, 4], &[x(1, 2), x(1, 2)], &[1, 2, 3, 4], 1);
        assert_eq!(dst, [0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0]);
    }

    #[test]
    fn slices_must_tile() {
        let x = |start, len| {
            vec![Extent {
                start,
                len,
                explicit: true,
            }]
        };
        assert!(check_slices_tile("t", &[4], &[x(0, 2), x(2, 2)]).is_ok());
        assert!(check_slices_tile("t", &[4], &[x(0, 3), x(2, 2)]).is_err());
        assert!(check_slices_tile("t", &[4], &[x(0, 2)]).is_err());
    }

    #[test]
    fn crc_combine_matches_serial_crc() {
        let big: Vec<u8> = (0..(CRC_CHUNK * 3 + 17))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        assert_eq!(parallel_crc32c(&big), crc32c::crc32c(&big));
    }
}
