//! Writing an [`H5Group`] tree as an HDF5 file the way h5py writes Keras files.

use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::CString;
use std::fs::File;
use std::os::raw::{c_char, c_void};
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

use hdf5_sys::h5a::{H5Acreate2, H5Awrite};
use hdf5_sys::h5d::{
    H5D_alloc_time_t, H5D_fill_time_t, H5D_layout_t, H5Dcreate2, H5Dget_offset, H5Dwrite,
};
use hdf5_sys::h5f::{H5Fcreate, H5F_ACC_TRUNC};
use hdf5_sys::h5g::{H5Gcreate2, H5Gopen2};
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5p::{
    H5Pcreate, H5Pset_alloc_time, H5Pset_fill_time, H5Pset_layout, H5Pset_obj_track_times,
    H5Pset_userblock, H5P_CLS_FILE_CREATE, H5P_DEFAULT,
};
use hdf5_sys::h5s::H5S_ALL;
use hdf5_sys::h5t::{self, H5T_str_t};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::ffi::{self, Ctx, Id, Kind, Mode};
use super::{
    array_split, check_link_name, keras_chunk_count, AttrValue, Attrs, H5Dataset, H5Group, H5Node,
    MakeHead, RawRegion, HDF5_OBJECT_HEADER_LIMIT,
};
use crate::error::{Error, IoContext, Result};
use crate::file_bytes;
use crate::fsutil;
use crate::progress::Progress;
use crate::store::manifest::{self, DigestSoFar};
use crate::tensor::{DType, TensorData};

/// The large values of a file being written, `(file offset, bytes)`: libhdf5 allocates their
/// space, kerasafe writes them.
type LargeValues<'d> = Vec<(u64, Cow<'d, [u8]>)>;

/// Bytes a variable-length string takes in an object header (a global heap ID).
const VLEN_HEADER_BYTES: usize = 16;

/// Datasets at least this large get their space allocated by libhdf5 but their bytes written by
/// us, after libhdf5 has closed the file, outside the library's global lock: large positional
/// writes front to back, with the CRC-32 of each computed alongside when asked for.
const RAW_WRITE_MIN: usize = 1 << 20;

pub(super) fn write_file(path: &Path, root: &H5Group<'_>) -> Result<()> {
    fsutil::build_then_replace(path, |tmp| write_new(tmp, path, root, 0, false).map(drop))
}

/// [`write_file`] for an artifact being staged: the file's SHA-256 is computed while it is
/// written and finished in the background ([`manifest::remember_written_partly`]) for the
/// artifact's manifest.
pub(super) fn write_file_for_artifact(path: &Path, root: &H5Group<'_>) -> Result<()> {
    let (file, meta, so_far) = fsutil::build_then_replace(path, |tmp| {
        let so_far = write_new_hashed(tmp, path, root, 0, &mut |_, _| Ok(Vec::new()))?;
        let file = File::open(tmp).at(path)?;
        // The identity after the last write; the rename that publishes the file keeps it.
        let meta = file.metadata().at(path)?;
        Ok((file, meta, so_far))
    })?;
    if let Some(so_far) = so_far {
        manifest::remember_written_partly(path, file, &meta, so_far);
    }
    Ok(())
}

/// Write `root` into the new file `file` (which must not exist), leaving its first `userblock`
/// bytes (0, or a power of two ≥ 512) to the caller; `path` names the file in messages. On
/// error the caller removes `file`. With `checksums`, returns the regions of the file written
/// from the tree's large values, with their CRC-32 (so the file's CRC needs to read only the
/// rest back); else none.
pub(super) fn write_new(
    file: &Path,
    path: &Path,
    root: &H5Group<'_>,
    userblock: u64,
    checksums: bool,
) -> Result<Vec<RawRegion>> {
    let (raw, progress) = lay_out(file, path, root, userblock)?;
    write_raw(file, path, raw, &progress, checksums)
}

/// [`write_new`], computing the file's SHA-256 while its large values are written, until they
/// are: from memory for those, from the file for what libhdf5 wrote (final once it closed the
/// file). `head` gives the user block's bytes from the CRC-32s of the large values' regions
/// (computed first, from memory; none without a user block); they stand for the file's first
/// `userblock` bytes in the digest and the caller writes them there. Returns the digest of the
/// file's start, for the caller to finish from the file once it is complete, or `None` if
/// libhdf5's layout is not the one the digest assumes (the values are then written before
/// `head` is asked for, with no regions, and the caller hashes the file after the write).
pub(super) fn write_new_hashed(
    file: &Path,
    path: &Path,
    root: &H5Group<'_>,
    userblock: u64,
    head: &mut MakeHead<'_>,
) -> Result<Option<DigestSoFar>> {
    let (mut raw, progress) = lay_out(file, path, root, userblock)?;
    raw.sort_unstable_by_key(|(offset, _)| *offset);
    let out = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .at(path)?;
    // libhdf5 leaves the file as long as the space it allocated; made sure of, so that the gaps
    // between the large values can be read while they are written.
    let end = raw
        .last()
        .map_or(0, |(offset, bytes)| offset + bytes.len() as u64);
    if out.metadata().at(path)?.len() < end {
        out.set_len(end).at(path)?;
    }
    let end = out.metadata().at(path)?.len();
    let write_values = || write_in_place(&out, &raw, &progress);
    if !values_in_file_order(&raw, userblock, end) {
        // Not a layout libhdf5 makes. The head must still be right (a `.keras` header holds the
        // CRC of what follows): values first, then the head from the file as written; no digest.
        write_values().at(path)?;
        let head = head(&out, &[])?;
        check_head(&head, userblock)?;
        return Ok(None);
    }
    let regions = match userblock {
        0 => Vec::new(),
        _ => region_crcs(&raw),
    };
    let head = head(&out, &regions)?;
    check_head(&head, userblock)?;
    let values_written = AtomicBool::new(false);
    let (written, digest) = rayon::join(
        || {
            let written = write_values();
            values_written.store(true, Ordering::Release);
            written
        },
        || sha256_in_file_order(&out, &head, &raw, end, &values_written),
    );
    written.at(path)?;
    Ok(Some(digest.at(path)?))
}

fn check_head(head: &[u8], userblock: u64) -> Result<()> {
    if head.len() as u64 != userblock {
        return Err(Error::invalid(format!(
            "a {}-byte head for a {userblock}-byte user block",
            head.len()
        )));
    }
    Ok(())
}

/// Whether the large values `raw` (sorted by offset) lie one after another between `start` and
/// `end` without overlapping, as libhdf5 allocates them.
fn values_in_file_order(raw: &[(u64, Cow<'_, [u8]>)], start: u64, end: u64) -> bool {
    let mut at = start;
    raw.iter().all(|(offset, bytes)| {
        let ok = *offset >= at
            && offset
                .checked_add(bytes.len() as u64)
                .is_some_and(|e| e <= end);
        at = offset.saturating_add(bytes.len() as u64);
        ok
    })
}

/// SHA-256 of `file` as it is once the large values `raw` (in file order, see
/// [`values_in_file_order`], not yet all written) are in place, with `head` for its first
/// bytes: the gaps between them, up to `end`, are read from the file. Stops early, between two
/// steps, once `values_written` is set: the rest is then better read back from the file on
/// another thread than hashed here while the caller waits.
fn sha256_in_file_order(
    file: &File,
    head: &[u8],
    raw: &[(u64, Cow<'_, [u8]>)],
    end: u64,
    values_written: &AtomicBool,
) -> std::io::Result<DigestSoFar> {
    let mut digest = DigestSoFar {
        sha256: Sha256::new(),
        hashed: 0,
    };
    let stop = || values_written.load(Ordering::Acquire);
    let step = |digest: &mut DigestSoFar, bytes: &[u8]| {
        digest.sha256.update(bytes);
        digest.hashed += bytes.len() as u64;
    };
    step(&mut digest, head);
    let mut buf = Vec::new();
    // Whether the gap up to `to` was hashed completely.
    let mut gap = |digest: &mut DigestSoFar, to: u64| -> std::io::Result<bool> {
        while digest.hashed < to {
            if stop() {
                return Ok(false);
            }
            buf.resize((to - digest.hashed).min(HASH_STEP) as usize, 0);
            file_bytes::ReadAt::read_exact_at(file, &mut buf, digest.hashed)?;
            step(digest, &buf);
        }
        Ok(true)
    };
    for (offset, bytes) in raw {
        if !gap(&mut digest, *offset)? {
            return Ok(digest);
        }
        for piece in bytes.chunks(HASH_STEP as usize) {
            if stop() {
                return Ok(digest);
            }
            step(&mut digest, piece);
        }
    }
    gap(&mut digest, end)?;
    Ok(digest)
}

/// Bytes hashed in one step of [`sha256_in_file_order`] (read at a time from the parts of a
/// file libhdf5 wrote).
const HASH_STEP: u64 = 1 << 20;

/// Check `root`, create `file` and let libhdf5 write everything but the large datasets' bytes,
/// for which it only allocates space; returns those `(offset, bytes)` and this thread's
/// progress counter, which counts them when they are written.
fn lay_out<'d>(
    file: &Path,
    path: &Path,
    root: &'d H5Group<'d>,
    userblock: u64,
) -> Result<(LargeValues<'d>, Progress)> {
    // Caller errors surface before anything touches the disk.
    validate_group(root, "/")?;
    let progress = Progress::current();
    if progress.is_on() {
        let mut total = 0u64;
        root.walk_datasets(|_, d| {
            if let Some(TensorData::Bytes(b)) = &d.data {
                total += b.len() as u64;
            }
        });
        progress.add_total(total);
    }
    // Creating the file with std first gives proper OS errors (missing directory, permissions).
    File::create_new(file).at(path)?;
    let writer = Writer {
        ctx: Ctx {
            path,
            mode: Mode::Write,
        },
        raw: RefCell::new(Vec::new()),
        progress: progress.clone(),
        userblock,
    };
    ffi::path_cstring(file).and_then(|cfile| ffi::locked(|| writer.file(&cfile, root)))?;
    Ok((writer.raw.into_inner(), progress))
}

/// Write each large value at its offset (the space libhdf5 allocated for it).
fn write_in_place(out: &File, raw: &LargeValues<'_>, progress: &Progress) -> std::io::Result<()> {
    raw.iter()
        .try_for_each(|(offset, bytes)| progress.write_all_at(out, bytes, *offset))
}

/// Fill the space libhdf5 allocated for the large datasets: one thread writes them in file
/// order (buffered writes to one file serialize on its inode lock, so more writers only
/// contend) while, with `checksums`, the others compute their CRC-32s.
fn write_raw(
    file: &Path,
    path: &Path,
    mut raw: LargeValues<'_>,
    progress: &Progress,
    checksums: bool,
) -> Result<Vec<RawRegion>> {
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    raw.sort_unstable_by_key(|(offset, _)| *offset);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(file)
        .at(path)?;
    let (written, regions) = rayon::join(
        || write_in_place(&file, &raw, progress),
        || match checksums {
            true => region_crcs(&raw),
            false => Vec::new(),
        },
    );
    written.at(path)?;
    Ok(regions)
}

/// The regions of the large values `raw`, with their CRC-32s, computed in parallel from memory.
fn region_crcs(raw: &[(u64, Cow<'_, [u8]>)]) -> Vec<RawRegion> {
    raw.par_iter()
        .map(|(offset, bytes)| RawRegion {
            offset: *offset,
            len: bytes.len() as u64,
            crc: file_bytes::crc32_state(bytes, &Progress::off()),
        })
        .collect()
}

/// An attribute as it goes to disk.
enum Planned<'v> {
    /// Scalar variable-length string.
    VlenScalar {
        bytes: &'v [u8],
        utf8: bool,
    },
    /// 1-D array of variable-length strings.
    VlenList {
        items: Vec<&'v [u8]>,
        utf8: bool,
    },
    /// 1-D array of fixed-length NUL-padded ASCII strings of `width` bytes.
    FixedList {
        items: Vec<&'v [u8]>,
        width: usize,
    },
    /// NumPy's `array([])`: float64, shape (0,).
    EmptyList,
    Int(i64),
    Float(f64),
    Bool(bool),
    Ints(&'v [i64]),
    Floats(&'v [f64]),
}

fn no_nul(what: &str, b: &[u8]) -> Result<()> {
    if b.contains(&0) {
        return Err(Error::invalid(format!(
            "{what} contains a NUL byte, which variable-length HDF5 strings cannot hold"
        )));
    }
    Ok(())
}

/// The attributes to write for `attrs` (string lists split as Keras does), checked.
fn plan_attrs<'v>(attrs: &'v Attrs, owner: &str) -> Result<Vec<(Cow<'v, str>, Planned<'v>)>> {
    let mut out: Vec<(Cow<'v, str>, Planned<'v>)> = Vec::new();
    for (name, value) in attrs.iter() {
        let what = format!("attribute {name:?} of {owner}");
        if name.is_empty() || name.contains('\0') {
            return Err(Error::invalid(format!("{what}: invalid attribute name")));
        }
        let planned = match value {
            AttrValue::Str(s) => {
                no_nul(&what, s.as_bytes())?;
                Planned::VlenScalar {
                    bytes: s.as_bytes(),
                    utf8: true,
                }
            }
            AttrValue::Bytes(b) => {
                no_nul(&what, b)?;
                Planned::VlenScalar {
                    bytes: b,
                    utf8: false,
                }
            }
            AttrValue::StrList(_) | AttrValue::BytesList(_) | AttrValue::FixedBytesList(_) => {
                let items = value.string_items().unwrap_or_default();
                if items.is_empty() {
                    Planned::EmptyList
                } else {
                    let max_len = items.iter().map(|i| i.len()).max().unwrap_or(0);
                    let width = max_len.max(1);
                    let chunks = keras_chunk_count(items.len(), max_len)
                        .map_err(|e| Error::invalid(format!("{what}: {e}")))?;
                    if chunks > 1 {
                        // Keras: pieces of a NumPy `S<max_len>` array as `name0`, `name1`, ….
                        for (i, piece) in array_split(&items, chunks).into_iter().enumerate() {
                            out.push((
                                Cow::Owned(format!("{name}{i}")),
                                Planned::FixedList {
                                    items: piece.to_vec(),
                                    width,
                                },
                            ));
                        }
                        continue;
                    }
                    let vlen_bytes = items.len() * VLEN_HEADER_BYTES;
                    match value {
                        AttrValue::FixedBytesList(_) => Planned::FixedList { items, width },
                        // Keras would store this list whole as variable-length strings, which
                        // overflows the header (16 bytes per item); fixed-length strings fit
                        // (len × width ≤ limit here) and every Keras reader accepts them.
                        _ if vlen_bytes > HDF5_OBJECT_HEADER_LIMIT => {
                            Planned::FixedList { items, width }
                        }
                        _ => {
                            for item in &items {
                                no_nul(&what, item)?;
                            }
                            Planned::VlenList {
                                items,
                                utf8: matches!(value, AttrValue::StrList(_)),
                            }
                        }
                    }
                }
            }
            AttrValue::Int(v) => Planned::Int(*v),
            AttrValue::Float(v) => Planned::Float(*v),
            AttrValue::Bool(v) => Planned::Bool(*v),
            AttrValue::Ints(v) if v.is_empty() => Planned::EmptyList,
            AttrValue::Floats(v) if v.is_empty() => Planned::EmptyList,
            AttrValue::Ints(v) => {
                check_header_size(&what, v.len() * 8)?;
                Planned::Ints(v)
            }
            AttrValue::Floats(v) => {
                check_header_size(&what, v.len() * 8)?;
                Planned::Floats(v)
            }
            AttrValue::Other { description } => {
                return Err(Error::invalid(format!(
                    "{what} has a type that cannot be written: {description}"
                )))
            }
        };
        out.push((Cow::Borrowed(name), planned));
    }
    let mut names: Vec<&str> = out.iter().map(|(n, _)| n.as_ref()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::invalid(format!(
            "attribute {:?} of {owner} is given twice (or collides with a chunk of a long list)",
            w[0]
        )));
    }
    Ok(out)
}

fn check_header_size(what: &str, bytes: usize) -> Result<()> {
    if bytes > HDF5_OBJECT_HEADER_LIMIT {
        return Err(Error::invalid(format!(
            "{what} takes {bytes} bytes, more than fits in an HDF5 object header \
             ({HDF5_OBJECT_HEADER_LIMIT}); store it as a dataset"
        )));
    }
    Ok(())
}

fn validate_group(g: &H5Group<'_>, path: &str) -> Result<()> {
    plan_attrs(&g.attrs, path)?;
    let mut names: Vec<&str> = Vec::with_capacity(g.children.len());
    for (name, child) in &g.children {
        check_link_name(name).map_err(|e| Error::invalid(format!("in {path}: {e}")))?;
        names.push(name);
        let cpath = child_path(path, name);
        match child {
            H5Node::Group(sub) => validate_group(sub, &cpath)?,
            H5Node::Dataset(d) => {
                d.check()
                    .map_err(|e| Error::invalid(format!("dataset {cpath}: {e}")))?;
                if let Some(TensorData::Strings(items)) = &d.data {
                    for s in items {
                        no_nul(&format!("dataset {cpath}"), s)?;
                    }
                }
                plan_attrs(&d.attrs, &cpath)?;
            }
        }
    }
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::invalid(format!(
            "{path}: member {:?} given twice",
            w[0]
        )));
    }
    Ok(())
}

fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

struct Writer<'p, 'd> {
    ctx: Ctx<'p>,
    /// `(file offset, bytes)` of datasets whose bytes are written after libhdf5 closes the file.
    raw: RefCell<LargeValues<'d>>,
    /// Counts dataset bytes as they are written.
    progress: Progress,
    /// Bytes left free at the start of the file (libhdf5's user block).
    userblock: u64,
}

impl<'d> Writer<'_, 'd> {
    fn file(&self, ctmp: &CString, root: &'d H5Group<'d>) -> Result<()> {
        let ctx = &self.ctx;
        let fapl = ffi::fapl(ctx)?;
        let fcpl = ctx.own(
            // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
            unsafe { H5Pcreate(*H5P_CLS_FILE_CREATE) },
            Kind::Plist,
            &|| "cannot create file properties".into(),
        )?;
        // The root group is created with the file; no timestamps there either.
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        ctx.check(unsafe { H5Pset_obj_track_times(fcpl.id(), 0) }, &|| {
            "cannot turn off timestamps".into()
        })?;
        if self.userblock > 0 {
            ctx.check(
                // SAFETY: libhdf5 call on an open property list; no pointers are passed.
                unsafe { H5Pset_userblock(fcpl.id(), self.userblock) },
                &|| format!("cannot reserve a {}-byte user block", self.userblock),
            )?;
        }
        let file = ctx.own(
            // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
            unsafe { H5Fcreate(ctmp.as_ptr(), H5F_ACC_TRUNC, fcpl.id(), fapl.id()) },
            Kind::File,
            &|| "cannot create the HDF5 file".into(),
        )?;
        let lcpl = ffi::lcpl(ctx)?;
        let gcpl = ffi::ocpl(ctx, false)?;
        let dcpl = ffi::ocpl(ctx, true)?;
        ctx.check(
            // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
            unsafe { H5Pset_layout(dcpl.id(), H5D_layout_t::H5D_CONTIGUOUS) },
            &|| "cannot set contiguous layout".into(),
        )?;
        // Large datasets: space allocated at creation, no fill values written (we write the bytes).
        let raw_dcpl = ffi::ocpl(ctx, true)?;
        ctx.check(
            // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
            unsafe { H5Pset_layout(raw_dcpl.id(), H5D_layout_t::H5D_CONTIGUOUS) },
            &|| "cannot set contiguous layout".into(),
        )?;
        ctx.check(
            // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
            unsafe { H5Pset_alloc_time(raw_dcpl.id(), H5D_alloc_time_t::H5D_ALLOC_TIME_EARLY) },
            &|| "cannot set early allocation".into(),
        )?;
        ctx.check(
            // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
            unsafe { H5Pset_fill_time(raw_dcpl.id(), H5D_fill_time_t::H5D_FILL_TIME_NEVER) },
            &|| "cannot turn off fill values".into(),
        )?;
        let props = Props {
            lcpl: lcpl.id(),
            gcpl: gcpl.id(),
            dcpl: dcpl.id(),
            raw_dcpl: raw_dcpl.id(),
        };
        {
            let rootg = ctx.own(
                // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
                unsafe { H5Gopen2(file.id(), c"/".as_ptr(), H5P_DEFAULT) },
                Kind::Group,
                &|| "cannot open the root group".into(),
            )?;
            self.group(rootg.id(), root, "/", &props)?;
        }
        drop((lcpl, gcpl, dcpl, raw_dcpl));
        file.close(ctx, &|| "cannot finish writing the HDF5 file".into())
    }

    fn group(&self, gid: hid_t, g: &'d H5Group<'d>, path: &str, props: &Props) -> Result<()> {
        self.attrs(gid, &g.attrs, path)?;
        for (name, child) in &g.children {
            let cname = ffi::cstring(name)?;
            let cpath = child_path(path, name);
            match child {
                H5Node::Group(sub) => {
                    let sid = self.ctx.own(
                        // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
                        unsafe {
                            H5Gcreate2(gid, cname.as_ptr(), props.lcpl, props.gcpl, H5P_DEFAULT)
                        },
                        Kind::Group,
                        &|| format!("cannot create group {cpath}"),
                    )?;
                    self.group(sid.id(), sub, &cpath, props)?;
                }
                H5Node::Dataset(d) => self.dataset(gid, &cname, d, &cpath, props)?,
            }
        }
        Ok(())
    }

    fn dataset(
        &self,
        gid: hid_t,
        cname: &CString,
        d: &'d H5Dataset<'d>,
        path: &str,
        props: &Props,
    ) -> Result<()> {
        let ctx = &self.ctx;
        let ty = dataset_type(ctx, d.dtype)?;
        let space = ffi::dataspace(ctx, (!d.shape.is_empty()).then_some(d.shape.as_slice()))?;
        let raw = matches!(&d.data, Some(TensorData::Bytes(b)) if b.len() >= RAW_WRITE_MIN);
        let dcpl = if raw { props.raw_dcpl } else { props.dcpl };
        let did = ctx.own(
            // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
            unsafe {
                H5Dcreate2(
                    gid,
                    cname.as_ptr(),
                    ty.id(),
                    space.id(),
                    props.lcpl,
                    dcpl,
                    H5P_DEFAULT,
                )
            },
            Kind::Dataset,
            &|| format!("cannot create dataset {path}"),
        )?;
        let what = || format!("cannot write dataset {path}");
        match &d.data {
            Some(TensorData::Bytes(bytes)) if !bytes.is_empty() => {
                let bytes: Cow<'d, [u8]> = if d.dtype == DType::Bool && bytes.iter().any(|&b| b > 1)
                {
                    Cow::Owned(bytes.iter().map(|&b| u8::from(b != 0)).collect())
                } else {
                    Cow::Borrowed(bytes.as_ref())
                };
                // SAFETY: `did` is a valid, open dataset id owned by this function.
                let offset = if raw {
                    // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
                    unsafe { H5Dget_offset(did.id()) }
                } else {
                    u64::MAX
                };
                if offset != u64::MAX {
                    self.raw.borrow_mut().push((offset, bytes));
                    return self.attrs(did.id(), &d.attrs, path);
                }
                ctx.check(
                    // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
                    unsafe {
                        H5Dwrite(
                            did.id(),
                            ty.id(),
                            H5S_ALL,
                            H5S_ALL,
                            H5P_DEFAULT,
                            bytes.as_ptr().cast::<c_void>(),
                        )
                    },
                    &what,
                )?;
                self.progress.advance(bytes.len() as u64);
            }
            Some(TensorData::Strings(items)) if !items.is_empty() => {
                let owned: Vec<CString> = items.iter().map(ffi::cstring).collect::<Result<_>>()?;
                let ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
                ctx.check(
                    // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
                    unsafe {
                        H5Dwrite(
                            did.id(),
                            ty.id(),
                            H5S_ALL,
                            H5S_ALL,
                            H5P_DEFAULT,
                            ptrs.as_ptr().cast::<c_void>(),
                        )
                    },
                    &what,
                )?;
            }
            _ => {}
        }
        self.attrs(did.id(), &d.attrs, path)
    }

    fn attrs(&self, obj: hid_t, attrs: &Attrs, owner: &str) -> Result<()> {
        for (name, planned) in plan_attrs(attrs, owner)? {
            self.attr(obj, &name, &planned, owner)?;
        }
        Ok(())
    }

    fn attr(&self, obj: hid_t, name: &str, planned: &Planned<'_>, owner: &str) -> Result<()> {
        let ctx = &self.ctx;
        let what = || format!("cannot write attribute {name:?} of {owner}");
        let scalar = || ffi::dataspace(ctx, None);
        let list = |n: usize| ffi::dataspace(ctx, Some(&[n as u64]));
        // (file type, memory type, space, data pointer); buffers live in this frame.
        let mut cstrings: Vec<CString> = Vec::new();
        let mut ptrs: Vec<*const c_char> = Vec::new();
        let mut fixed: Vec<u8> = Vec::new();
        let (i64v, f64v, boolv);
        let (ftype, mem, space, data): (Id, Option<hid_t>, Id, *const c_void) = match planned {
            Planned::VlenScalar { bytes, utf8 } => {
                cstrings.push(ffi::cstring(bytes)?);
                ptrs.push(cstrings[0].as_ptr());
                let t = ffi::vlen_str_type(ctx, *utf8)?;
                (t, None, scalar()?, ptrs.as_ptr().cast())
            }
            Planned::VlenList { items, utf8 } => {
                for item in items {
                    cstrings.push(ffi::cstring(item)?);
                }
                ptrs.extend(cstrings.iter().map(|c| c.as_ptr()));
                let t = ffi::vlen_str_type(ctx, *utf8)?;
                (t, None, list(items.len())?, ptrs.as_ptr().cast())
            }
            Planned::FixedList { items, width } => {
                fixed.resize(items.len() * width, 0);
                for (slot, item) in fixed.chunks_mut(*width).zip(items) {
                    slot[..item.len()].copy_from_slice(item);
                }
                let t = ffi::fixed_str_type(ctx, *width, H5T_str_t::H5T_STR_NULLPAD)?;
                (t, None, list(items.len())?, fixed.as_ptr().cast())
            }
            Planned::EmptyList => {
                let t = ffi::copy_type(ctx, *h5t::H5T_IEEE_F64LE)?;
                (t, None, list(0)?, ptr::null())
            }
            Planned::Int(v) => {
                i64v = *v;
                let t = ffi::copy_type(ctx, *h5t::H5T_STD_I64LE)?;
                let p: *const i64 = &i64v;
                (t, Some(*h5t::H5T_NATIVE_INT64), scalar()?, p.cast())
            }
            Planned::Float(v) => {
                f64v = *v;
                let t = ffi::copy_type(ctx, *h5t::H5T_IEEE_F64LE)?;
                let p: *const f64 = &f64v;
                (t, Some(*h5t::H5T_NATIVE_DOUBLE), scalar()?, p.cast())
            }
            Planned::Bool(v) => {
                boolv = i8::from(*v);
                let t = ffi::bool_type(ctx)?;
                let p: *const i8 = &boolv;
                (t, None, scalar()?, p.cast())
            }
            Planned::Ints(v) => {
                let t = ffi::copy_type(ctx, *h5t::H5T_STD_I64LE)?;
                (
                    t,
                    Some(*h5t::H5T_NATIVE_INT64),
                    list(v.len())?,
                    v.as_ptr().cast(),
                )
            }
            Planned::Floats(v) => {
                let t = ffi::copy_type(ctx, *h5t::H5T_IEEE_F64LE)?;
                (
                    t,
                    Some(*h5t::H5T_NATIVE_DOUBLE),
                    list(v.len())?,
                    v.as_ptr().cast(),
                )
            }
        };
        let cname = ffi::cstring(name)?;
        let aid = ctx.own(
            // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
            unsafe {
                H5Acreate2(
                    obj,
                    cname.as_ptr(),
                    ftype.id(),
                    space.id(),
                    H5P_DEFAULT,
                    H5P_DEFAULT,
                )
            },
            Kind::Attr,
            &what,
        )?;
        if !data.is_null() {
            let mem = mem.unwrap_or(ftype.id());
            // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
            ctx.check(unsafe { H5Awrite(aid.id(), mem, data) }, &what)?;
        }
        Ok(())
    }
}

/// Property lists shared by all objects of a file.
struct Props {
    lcpl: hid_t,
    gcpl: hid_t,
    dcpl: hid_t,
    /// `dcpl` with early allocation and no fill: for datasets written by [`write_raw`].
    raw_dcpl: hid_t,
}

/// The file (and memory) type of a dataset of `dtype`, as h5py creates it.
fn dataset_type(ctx: &Ctx<'_>, dtype: DType) -> Result<Id> {
    let std = |t: hid_t| ffi::copy_type(ctx, t);
    match dtype {
        DType::I8 => std(*h5t::H5T_STD_I8LE),
        DType::I16 => std(*h5t::H5T_STD_I16LE),
        DType::I32 => std(*h5t::H5T_STD_I32LE),
        DType::I64 => std(*h5t::H5T_STD_I64LE),
        DType::U8 => std(*h5t::H5T_STD_U8LE),
        DType::U16 => std(*h5t::H5T_STD_U16LE),
        DType::U32 => std(*h5t::H5T_STD_U32LE),
        DType::U64 => std(*h5t::H5T_STD_U64LE),
        DType::F32 => std(*h5t::H5T_IEEE_F32LE),
        DType::F64 => std(*h5t::H5T_IEEE_F64LE),
        DType::F16 => ffi::half_type(ctx, 10, 5, 15),
        DType::BF16 => ffi::opaque_type(ctx, 2),
        DType::F8E5M2
        | DType::F8E4M3FN
        | DType::F8E4M3FNUZ
        | DType::F8E4M3B11FNUZ
        | DType::F8E5M2FNUZ => ffi::opaque_type(ctx, 1),
        DType::Bool => ffi::bool_type(ctx),
        DType::C64 => ffi::complex_type(ctx, 4),
        DType::C128 => ffi::complex_type(ctx, 8),
        DType::String => ffi::vlen_str_type(ctx, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn the_digest_follows_gaps_and_values_in_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        // 18 bytes: a head of 4, libhdf5's bytes at 4..6, 9..12 and 16..18, values at 6..9 and
        // 12..16 (not written yet: the digest takes them from memory).
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        file.write_all_at(b"????hh___HHH____tt", 0).unwrap();
        let raw = [
            (6, Cow::Borrowed(&b"abc"[..])),
            (12, Cow::Borrowed(&b"defg"[..])),
        ];
        assert!(values_in_file_order(&raw, 4, 18));
        let writing = AtomicBool::new(false);
        let digest = sha256_in_file_order(&file, b"HEAD", &raw, 18, &writing).unwrap();
        assert_eq!(digest.hashed, 18);
        assert_eq!(
            digest.sha256.finalize()[..],
            Sha256::digest(b"HEADhhabcHHHdefgtt")[..]
        );
        // No large values: the head, then the file.
        let digest = sha256_in_file_order(&file, b"HEAD", &[], 18, &writing).unwrap();
        assert_eq!(digest.hashed, 18);
        assert_eq!(
            digest.sha256.finalize()[..],
            Sha256::digest(b"HEADhh___HHH____tt")[..]
        );
        // Once the values are written it stops, says where, and the rest comes from the file.
        let written = AtomicBool::new(true);
        let digest = sha256_in_file_order(&file, b"HEAD", &raw, 18, &written).unwrap();
        assert_eq!(digest.hashed, 4);
        file.write_all_at(b"abc", 6).unwrap();
        file.write_all_at(b"defg", 12).unwrap();
        let finished = manifest::finish_digest(&file, digest, 18).unwrap();
        assert_eq!(
            finished,
            crate::store::manifest::hex(&Sha256::digest(b"HEADhhabcHHHdefgtt"))
        );
    }

    #[test]
    fn values_out_of_file_order_are_told() {
        let v = |offset: u64, bytes: &'static [u8]| (offset, Cow::Borrowed(bytes));
        assert!(values_in_file_order(&[], 4, 4));
        assert!(values_in_file_order(&[v(4, b"ab"), v(6, b"cd")], 4, 8));
        assert!(!values_in_file_order(&[v(6, b"abcd"), v(9, b"x")], 4, 16)); // overlap
        assert!(!values_in_file_order(&[v(2, b"ab")], 4, 16)); // into the head
        assert!(!values_in_file_order(&[v(14, b"abc")], 4, 16)); // past the end
        assert!(!values_in_file_order(&[v(u64::MAX, b"ab")], 4, 16)); // overflowing
    }
}
