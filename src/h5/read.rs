//! Reading an HDF5 file into an [`H5Group`] tree, bounding every size by the file.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::raw::{c_char, c_int, c_void};
use std::path::Path;
use std::ptr;

use hdf5_sys::h5::{hsize_t, HADDR_UNDEF};
use hdf5_sys::h5a::{H5Aget_space, H5Aget_storage_size, H5Aget_type, H5Aopen, H5Aread};
use hdf5_sys::h5d::{
    H5D_layout_t, H5Dget_create_plist, H5Dget_offset, H5Dget_space, H5Dget_storage_size,
    H5Dget_type, H5Dread, H5Dvlen_get_buf_size,
};
use hdf5_sys::h5f::{H5Fget_create_plist, H5Fopen, H5F_ACC_RDONLY};
use hdf5_sys::h5g::H5Gopen2;
use hdf5_sys::h5l::H5L_type_t;
use hdf5_sys::h5o::{H5O_info2_t, H5O_type_t, H5Oget_info3, H5Oopen, H5O_INFO_BASIC};
use hdf5_sys::h5p::{
    H5Pget_external_count, H5Pget_layout, H5Pget_nfilters, H5Pget_sizes, H5P_DEFAULT,
};
use hdf5_sys::h5s::{
    H5S_class_t, H5Sget_simple_extent_dims, H5Sget_simple_extent_ndims, H5Sget_simple_extent_type,
    H5S_ALL,
};
use hdf5_sys::h5t::{self, H5T_class_t, H5T_cset_t, H5T_sign_t, H5T_str_t};

use super::ffi::{self, Ctx, Id, Kind, Mode};
use super::{AttrValue, Attrs, H5Dataset, H5Group, H5Node, StorageInfo, Values, DEFER_MIN};
use crate::error::{IoContext, Result};
use crate::file_bytes::ReadAt;
use crate::progress::Progress;
use crate::tensor::{byte_size, DType, TensorData};
use rayon::prelude::*;

/// Deepest group nesting accepted (Keras files nest a few levels per model level).
const MAX_DEPTH: usize = 256;
/// Bytes that chunked (possibly compressed) or unallocated datasets may expand to beyond what
/// the file holds, in total per file.
const MAX_INFLATED: u64 = 4 << 30;
/// A chunked dataset may declare at most this many times its stored size (Keras uses 1000).
const MAX_RATIO: u64 = 1000;
/// Bytes one variable-length element occupies in the file (global heap ID: length, address,
/// index); bounds element counts of variable-length data by the file size.
const VLEN_REF_BYTES: u64 = 16;

/// Where the bytes of the file being read are.
#[derive(Clone, Copy)]
pub(super) enum Input<'a> {
    /// On disk, at the path being read.
    File,
    /// In memory (the path only names it in messages).
    Image(&'a [u8]),
}

pub(super) fn read_file(
    path: &Path,
    input: Input<'_>,
    file_len: u64,
    values: Values,
) -> Result<H5Group<'static>> {
    type Read = (H5Group<'static>, HashMap<String, u64>);
    let (cpath, image) = match input {
        Input::File => (ffi::path_cstring(path)?, None),
        Input::Image(bytes) => (ffi::image_name(), Some(ffi::Image::new(bytes))),
    };
    let progress = Progress::current();
    ffi::locked(|| -> Result<Read> {
        let ctx = Ctx {
            path,
            mode: Mode::Read,
        };
        let fapl = match &image {
            None => ffi::fapl(&ctx)?,
            Some(image) => ffi::image_fapl(&ctx, image)?,
        };
        let file = ctx.own(
            // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
            unsafe { H5Fopen(cpath.as_ptr(), H5F_ACC_RDONLY, fapl.id()) },
            Kind::File,
            &|| "cannot open as HDF5".into(),
        )?;
        let root = ctx.own(
            // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
            unsafe { H5Gopen2(file.id(), c"/".as_ptr(), H5P_DEFAULT) },
            Kind::Group,
            &|| "cannot open the root group".into(),
        )?;
        let vlen_disk_size = vlen_disk_size(&ctx, &file)?;
        let mut reader = Reader {
            ctx,
            file_len,
            vlen_disk_size,
            values,
            file_budget: file_len,
            inflate_budget: MAX_INFLATED,
            groups_seen: HashSet::new(),
            raw: HashMap::new(),
            progress: progress.clone(),
        };
        let tree = reader.group(root.id(), "/", 0)?;
        drop(root);
        file.close(&ctx, &|| "cannot close".into())?;
        Ok((tree, reader.raw))
    })
    .and_then(|(mut tree, raw)| {
        match input {
            Input::File => read_raw(
                path,
                &File::open(path).at(path)?,
                &mut tree,
                &raw,
                &progress,
            )?,
            Input::Image(bytes) => read_raw(path, bytes, &mut tree, &raw, &progress)?,
        }
        Ok(tree)
    })
}

/// Datasets at least this large, stored contiguously, unfiltered and in memory byte order, are
/// read by positional reads in parallel after libhdf5 has closed the file (its reads go through
/// one global lock).
const RAW_READ_MIN: u64 = 1 << 20;

/// Fill the buffers of the datasets listed in `raw` straight from the file.
fn read_raw(
    path: &Path,
    source: &(impl ReadAt + ?Sized),
    tree: &mut H5Group<'static>,
    raw: &HashMap<String, u64>,
    progress: &Progress,
) -> Result<()> {
    if raw.is_empty() {
        return Ok(());
    }
    fn collect<'t>(
        g: &'t mut H5Group<'static>,
        prefix: &str,
        raw: &HashMap<String, u64>,
        out: &mut Vec<(u64, &'t mut [u8])>,
    ) {
        for (name, node) in &mut g.children {
            let p = if prefix == "/" {
                format!("/{name}")
            } else {
                format!("{prefix}/{name}")
            };
            match node {
                H5Node::Group(sub) => collect(sub, &p, raw, out),
                H5Node::Dataset(d) => {
                    if let (Some(&offset), Some(TensorData::Bytes(Cow::Owned(buf)))) =
                        (raw.get(&p), d.data.as_mut())
                    {
                        out.push((offset, buf.as_mut_slice()));
                    }
                }
            }
        }
    }
    let mut jobs = Vec::with_capacity(raw.len());
    collect(tree, "/", raw, &mut jobs);
    jobs.into_par_iter()
        .try_for_each(|(offset, buf)| progress.read_exact_at(source, buf, offset))
        .at(path)
}

/// Bytes of one variable-length element on disk: a 4-byte length, the global heap collection's
/// address (the file's address size) and a 4-byte index.
fn vlen_disk_size(ctx: &Ctx<'_>, file: &Id) -> Result<usize> {
    let fcpl = ctx.own(
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        unsafe { H5Fget_create_plist(file.id()) },
        Kind::Plist,
        &|| "cannot get the file creation properties".into(),
    )?;
    let (mut addr, mut size) = (0usize, 0usize);
    ctx.check(
        // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
        unsafe { H5Pget_sizes(fcpl.id(), &mut addr, &mut size) },
        &|| "cannot get the file's address size".into(),
    )?;
    Ok(8 + addr)
}

struct Reader<'p> {
    ctx: Ctx<'p>,
    file_len: u64,
    /// See [`vlen_disk_size`].
    vlen_disk_size: usize,
    values: Values,
    /// Bytes of in-file (contiguous/compact) data and strings still allowed: the sum over all
    /// datasets of a well-formed file cannot exceed the file size.
    file_budget: u64,
    /// Bytes chunked or unallocated datasets may still expand to.
    inflate_budget: u64,
    /// Object tokens of the groups visited: a group reached twice is a cycle or an alias.
    groups_seen: HashSet<[u8; 16]>,
    /// Large contiguous datasets whose bytes are read after libhdf5 closes the file:
    /// dataset path → file offset.
    raw: HashMap<String, u64>,
    /// Counts the values' bytes (announced when a dataset's values are planned).
    progress: Progress,
}

/// How the values of a dataset or attribute are held in memory.
enum Mem {
    /// Fixed-size elements read through this memory type.
    Fixed(Id),
    /// Variable-length strings (the memory type is a vlen string of the file's charset).
    VlenStr(Id),
    /// Fixed-length strings of `size` bytes with padding `pad`.
    FixedStr { ty: Id, size: usize, pad: H5T_str_t },
}

fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

impl Reader<'_> {
    fn group(&mut self, gid: i64, path: &str, depth: usize) -> Result<H5Group<'static>> {
        if depth > MAX_DEPTH {
            return Err(self
                .ctx
                .fail(format!("{path}: groups nested more than {MAX_DEPTH} deep")));
        }
        let attrs = self.attrs(gid, path)?;
        let mut children = Vec::new();
        for (raw_name, link_type) in ffi::list_links(&self.ctx, gid, path)? {
            let name = String::from_utf8(raw_name).map_err(|e| {
                self.ctx.fail(format!(
                    "{path}: member name {:?} is not UTF-8",
                    String::from_utf8_lossy(e.as_bytes())
                ))
            })?;
            let cpath = child_path(path, &name);
            if link_type != H5L_type_t::H5L_TYPE_HARD as c_int {
                let kind = if link_type == H5L_type_t::H5L_TYPE_SOFT as c_int {
                    "a soft link"
                } else if link_type == H5L_type_t::H5L_TYPE_EXTERNAL as c_int {
                    "an external link (to another file)"
                } else {
                    "a user-defined link"
                };
                return Err(self
                    .ctx
                    .unsafe_content(format!("{cpath} is {kind}; links are refused")));
            }
            let cname = ffi::cstring(&name)?;
            let obj = self.ctx.own(
                // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
                unsafe { H5Oopen(gid, cname.as_ptr(), H5P_DEFAULT) },
                Kind::Object,
                &|| format!("cannot open {cpath}"),
            )?;
            let mut info = std::mem::MaybeUninit::<H5O_info2_t>::uninit();
            self.ctx.check(
                // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
                unsafe { H5Oget_info3(obj.id(), info.as_mut_ptr(), H5O_INFO_BASIC) },
                &|| format!("cannot inspect {cpath}"),
            )?;
            // SAFETY: H5Oget_info3 succeeded and filled the basic fields.
            let info = unsafe { info.assume_init() };
            match info.type_ {
                H5O_type_t::H5O_TYPE_GROUP => {
                    // SAFETY: H5O_token_t is a repr(C) wrapper of 16 bytes.
                    let token: [u8; 16] = unsafe { std::mem::transmute(info.token) };
                    if !self.groups_seen.insert(token) {
                        return Err(self.ctx.fail(format!(
                            "{cpath} links to a group that was already visited (cycle or alias)"
                        )));
                    }
                    let g = self.group(obj.id(), &cpath, depth + 1)?;
                    children.push((name, H5Node::Group(g)));
                }
                H5O_type_t::H5O_TYPE_DATASET => {
                    let d = self.dataset(obj.id(), &cpath)?;
                    children.push((name, H5Node::Dataset(d)));
                }
                // Committed datatypes carry no data; Keras never writes them.
                H5O_type_t::H5O_TYPE_NAMED_DATATYPE => {}
                _ => {
                    return Err(self
                        .ctx
                        .fail(format!("{cpath}: unsupported kind of HDF5 object")))
                }
            }
        }
        Ok(H5Group { attrs, children })
    }

    fn attrs(&mut self, obj: i64, path: &str) -> Result<Attrs> {
        let mut out = Vec::new();
        for cname in ffi::list_attrs(&self.ctx, obj, path)? {
            let name = cname.to_str().map_err(|_| {
                self.ctx.fail(format!(
                    "{path}: attribute name {:?} is not UTF-8",
                    cname.to_string_lossy()
                ))
            })?;
            let what = format!("attribute {name:?} of {path}");
            let aid = self.ctx.own(
                // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
                unsafe { H5Aopen(obj, cname.as_ptr(), H5P_DEFAULT) },
                Kind::Attr,
                &|| format!("cannot open {what}"),
            )?;
            let value = self.attr_value(&aid, &what)?;
            out.push((name.to_string(), value));
        }
        Ok(Attrs(out))
    }

    /// Dimensions of a dataspace; `None` for a null (empty) dataspace.
    fn dims(&self, space: &Id, what: &str) -> Result<Option<Vec<u64>>> {
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        let class = unsafe { H5Sget_simple_extent_type(space.id()) };
        match class {
            H5S_class_t::H5S_SCALAR => return Ok(Some(Vec::new())),
            H5S_class_t::H5S_SIMPLE => {}
            H5S_class_t::H5S_NULL => return Ok(None),
            _ => {
                return Err(self
                    .ctx
                    .h5_fail(&|| format!("cannot read the shape of {what}")))
            }
        }
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        let rank = unsafe { H5Sget_simple_extent_ndims(space.id()) };
        if !(0..=32).contains(&rank) {
            return Err(self
                .ctx
                .h5_fail(&|| format!("cannot read the rank of {what}")));
        }
        let mut dims = vec![0 as hsize_t; rank as usize];
        let ret =
            // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
            unsafe { H5Sget_simple_extent_dims(space.id(), dims.as_mut_ptr(), ptr::null_mut()) };
        if ret < 0 {
            return Err(self
                .ctx
                .h5_fail(&|| format!("cannot read the shape of {what}")));
        }
        Ok(Some(dims))
    }

    fn attr_value(&mut self, aid: &Id, what: &str) -> Result<AttrValue> {
        let ty = self
            .ctx
            // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
            .own(unsafe { H5Aget_type(aid.id()) }, Kind::Type, &|| {
                format!("cannot read the type of {what}")
            })?;
        let space = self
            .ctx
            // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
            .own(unsafe { H5Aget_space(aid.id()) }, Kind::Space, &|| {
                format!("cannot read the shape of {what}")
            })?;
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        let class = unsafe { h5t::H5Tget_class(ty.id()) };
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        let size = unsafe { h5t::H5Tget_size(ty.id()) };
        let other = |why: &str| AttrValue::Other {
            description: why.to_string(),
        };
        let Some(dims) = self.dims(&space, what)? else {
            return Ok(other("empty (null dataspace)"));
        };
        if dims.len() > 1 {
            return Ok(other(&format!(
                "{} array of shape {dims:?}",
                ffi::class_name(class)
            )));
        }
        let scalar = dims.is_empty();
        let count = dims.first().copied().unwrap_or(1);
        // libhdf5 copies `count` elements out of the attribute's stored bytes without checking
        // that the message held that many (a heap over-read on a crafted file, found by fuzzing):
        // check first. Variable-length elements are stored as their on-disk references.
        // SAFETY: plain libhdf5 queries on identifiers this reader owns.
        let variable = class == H5T_class_t::H5T_VLEN
            || (class == H5T_class_t::H5T_STRING
                && unsafe { h5t::H5Tis_variable_str(ty.id()) } > 0);
        let element = if variable { self.vlen_disk_size } else { size };
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        let stored = unsafe { H5Aget_storage_size(aid.id()) };
        let needed = count.saturating_mul(element as u64);
        if needed > stored {
            return Err(self.ctx.fail(format!(
                "{what} stores {stored} bytes, but its type and shape need {needed}"
            )));
        }
        match class {
            H5T_class_t::H5T_STRING => {
                let (mem, utf8) = self.string_mem(&ty, what)?;
                let vlen = matches!(mem, Mem::VlenStr(_));
                let items = self.read_strings(
                    &mem,
                    count,
                    // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
                    |m, buf| unsafe { H5Aread(aid.id(), m, buf) },
                    &space,
                    what,
                )?;
                Ok(string_attr(items, scalar, vlen, utf8))
            }
            H5T_class_t::H5T_INTEGER | H5T_class_t::H5T_FLOAT if size <= 8 => {
                // Stored in the file (object header or dense storage): bounded by it.
                if size == 0 || count > self.file_len {
                    return Err(self.ctx.fail(format!(
                        "{what} declares {count} values, more than the file holds"
                    )));
                }
                self.charge_file(count.saturating_mul(size as u64), what)?;
                let int = class == H5T_class_t::H5T_INTEGER;
                let mem = if int {
                    *h5t::H5T_NATIVE_INT64
                } else {
                    *h5t::H5T_NATIVE_DOUBLE
                };
                let mut buf = vec![0u64; count as usize];
                self.ctx.check(
                    // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
                    unsafe { H5Aread(aid.id(), mem, buf.as_mut_ptr().cast::<c_void>()) },
                    &|| format!("cannot read {what}"),
                )?;
                Ok(match (int, scalar) {
                    (true, true) => AttrValue::Int(buf[0] as i64),
                    (true, false) => AttrValue::Ints(buf.into_iter().map(|v| v as i64).collect()),
                    (false, true) => AttrValue::Float(f64::from_bits(buf[0])),
                    (false, false) => {
                        AttrValue::Floats(buf.into_iter().map(f64::from_bits).collect())
                    }
                })
            }
            H5T_class_t::H5T_ENUM if scalar && self.is_bool_enum(&ty)? => {
                let mem = ffi::copy_type(&self.ctx, ty.id())?;
                let mut v = 0u8;
                self.ctx.check(
                    // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
                    unsafe { H5Aread(aid.id(), mem.id(), (&mut v as *mut u8).cast::<c_void>()) },
                    &|| format!("cannot read {what}"),
                )?;
                Ok(AttrValue::Bool(v != 0))
            }
            _ => Ok(other(&format!(
                "{} of {size} bytes, shape {dims:?}",
                ffi::class_name(class)
            ))),
        }
    }

    /// h5py's bool: an enum over a 1-byte integer with members FALSE and TRUE.
    fn is_bool_enum(&self, ty: &Id) -> Result<bool> {
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        if unsafe { h5t::H5Tget_size(ty.id()) } != 1 {
            return Ok(false);
        }
        let mut names = ffi::member_names(&self.ctx, ty.id())?;
        names.sort();
        Ok(names == ["FALSE", "TRUE"])
    }

    /// The memory type for reading strings of file type `ty`, and whether they are UTF-8.
    fn string_mem(&self, ty: &Id, what: &str) -> Result<(Mem, bool)> {
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        let vlen = unsafe { h5t::H5Tis_variable_str(ty.id()) };
        if vlen < 0 {
            return Err(self
                .ctx
                .h5_fail(&|| format!("cannot read the type of {what}")));
        }
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        let cset = unsafe { h5t::H5Tget_cset(ty.id()) };
        let utf8 = cset == H5T_cset_t::H5T_CSET_UTF8;
        if vlen > 0 {
            return Ok((Mem::VlenStr(ffi::vlen_str_type(&self.ctx, utf8)?), utf8));
        }
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        let size = unsafe { h5t::H5Tget_size(ty.id()) };
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        let pad = unsafe { h5t::H5Tget_strpad(ty.id()) };
        if size == 0 {
            return Err(self
                .ctx
                .h5_fail(&|| format!("cannot read the type of {what}")));
        }
        let mem = ffi::copy_type(&self.ctx, ty.id())?;
        Ok((Mem::FixedStr { ty: mem, size, pad }, utf8))
    }

    /// Read the `count` variable-length elements raw (see [`ffi::raw_vlen_type`]) and refuse
    /// sequence lengths the file cannot hold, before libhdf5 allocates for them.
    fn check_vlen_lengths(
        &mut self,
        count: u64,
        read: &impl Fn(i64, *mut c_void) -> i32,
        what: &str,
    ) -> Result<()> {
        let raw_ty = ffi::raw_vlen_type(&self.ctx, self.vlen_disk_size)?;
        let mut raw = vec![0u8; (count as usize).saturating_mul(self.vlen_disk_size)];
        self.ctx.check(
            read(raw_ty.id(), raw.as_mut_ptr().cast::<c_void>()),
            &|| format!("cannot read the string references of {what}"),
        )?;
        let mut total = 0u64;
        for element in raw.chunks_exact(self.vlen_disk_size) {
            let len = u64::from(u32::from_le_bytes([
                element[0], element[1], element[2], element[3],
            ]));
            total = total.saturating_add(len);
            if len > self.file_len || total > self.file_budget {
                return Err(self.ctx.fail(format!(
                    "{what} declares a string of {len} bytes ({total} in all), more than the file holds"
                )));
            }
        }
        Ok(())
    }

    /// Read `count` strings with `read(mem_type, buf)`, charging their bytes to the file budget.
    fn read_strings(
        &mut self,
        mem: &Mem,
        count: u64,
        read: impl Fn(i64, *mut c_void) -> i32,
        space: &Id,
        what: &str,
    ) -> Result<Vec<Vec<u8>>> {
        match mem {
            Mem::VlenStr(ty) => {
                let refs = count.saturating_mul(VLEN_REF_BYTES);
                if refs > self.file_len {
                    return Err(self.ctx.fail(format!(
                        "{what} declares {count} strings, more than the file can hold"
                    )));
                }
                self.check_vlen_lengths(count, &read, what)?;
                let mut ptrs: Vec<*mut c_char> = vec![ptr::null_mut(); count as usize];
                let ret = read(ty.id(), ptrs.as_mut_ptr().cast::<c_void>());
                let mut out = Vec::with_capacity(ptrs.len());
                let mut total = 0u64;
                for &p in &ptrs {
                    if p.is_null() {
                        out.push(Vec::new());
                        continue;
                    }
                    // SAFETY: libhdf5 filled the slot with a NUL-terminated string.
                    let s = unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes();
                    total += s.len() as u64;
                    if total > self.file_budget {
                        break;
                    }
                    out.push(s.to_vec());
                }
                // SAFETY: `ptrs` holds null or libhdf5-allocated strings read through `ty`.
                unsafe {
                    h5t::H5Treclaim(
                        ty.id(),
                        space.id(),
                        H5P_DEFAULT,
                        ptrs.as_mut_ptr().cast::<c_void>(),
                    );
                }
                self.ctx.check(ret, &|| format!("cannot read {what}"))?;
                self.charge_file(total, what)?;
                Ok(out)
            }
            Mem::FixedStr { ty, size, pad } => {
                let total = count.saturating_mul(*size as u64);
                self.charge_file(total, what)?;
                let mut buf = vec![0u8; total as usize];
                self.ctx
                    .check(read(ty.id(), buf.as_mut_ptr().cast::<c_void>()), &|| {
                        format!("cannot read {what}")
                    })?;
                Ok(buf.chunks(*size).map(|c| unpad(c, *pad)).collect())
            }
            Mem::Fixed(_) => Err(self.ctx.fail(format!("{what}: not a string type"))),
        }
    }

    fn charge_file(&mut self, bytes: u64, what: &str) -> Result<()> {
        if bytes > self.file_budget {
            return Err(self.ctx.fail(format!(
                "{what} declares {bytes} bytes, more than the {} bytes of the file left for it",
                self.file_budget
            )));
        }
        self.file_budget -= bytes;
        Ok(())
    }

    fn dataset(&mut self, did: i64, path: &str) -> Result<H5Dataset<'static>> {
        let what = format!("dataset {path}");
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        let ty = self.ctx.own(unsafe { H5Dget_type(did) }, Kind::Type, &|| {
            format!("cannot read the type of {what}")
        })?;
        let space = self
            .ctx
            // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
            .own(unsafe { H5Dget_space(did) }, Kind::Space, &|| {
                format!("cannot read the shape of {what}")
            })?;
        let Some(shape) = self.dims(&space, &what)? else {
            return Err(self.ctx.fail(format!(
                "{what} has a null dataspace (h5py Empty), which is not supported"
            )));
        };
        let dcpl = self
            .ctx
            // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
            .own(unsafe { H5Dget_create_plist(did) }, Kind::Plist, &|| {
                format!("cannot read the storage properties of {what}")
            })?;
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        let layout = unsafe { H5Pget_layout(dcpl.id()) };
        let layout = match layout {
            H5D_layout_t::H5D_CONTIGUOUS => "contiguous",
            H5D_layout_t::H5D_CHUNKED => "chunked",
            H5D_layout_t::H5D_COMPACT => "compact",
            H5D_layout_t::H5D_VIRTUAL => {
                return Err(self.ctx.unsafe_content(format!(
                    "{what} is a virtual dataset (data mapped from other files); refused"
                )))
            }
            _ => {
                return Err(self
                    .ctx
                    .h5_fail(&|| format!("cannot read the layout of {what}")))
            }
        };
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        let external = unsafe { H5Pget_external_count(dcpl.id()) };
        if external != 0 {
            return Err(self
                .ctx
                .unsafe_content(format!("{what} keeps its data in external files; refused")));
        }
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        let filters = unsafe { H5Pget_nfilters(dcpl.id()) }.max(0) as u32;
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        let stored_bytes = unsafe { H5Dget_storage_size(did) };
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        let offset = unsafe { H5Dget_offset(did) };
        let attrs = self.attrs(did, path)?;
        let (dtype, mem) = self.dataset_type(&ty, &attrs, &what)?;

        // Contiguous, unfiltered, in memory byte order and inside the file: readable as bytes
        // (after the file is closed, or later by the caller).
        let raw_offset = if layout == "contiguous"
            && offset != HADDR_UNDEF
            && filters == 0
            && dtype != DType::Bool
            // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
            && matches!(&mem, Mem::Fixed(m) if unsafe { h5t::H5Tequal(ty.id(), m.id()) } > 0)
        {
            let declared = byte_size(dtype, &shape).map_err(|e| e.in_file(self.ctx.path))?;
            offset
                .checked_add(declared)
                .is_some_and(|end| end <= self.file_len)
                .then_some(offset)
        } else {
            None
        };
        let data = match self.values {
            Values::Skip => None,
            Values::Deferred if raw_offset.is_some() && stored_bytes >= DEFER_MIN => {
                let declared = byte_size(dtype, &shape).map_err(|e| e.in_file(self.ctx.path))?;
                self.charge_file(declared, &what)?;
                None
            }
            Values::All | Values::Deferred => Some(self.dataset_values(
                did,
                &space,
                dtype,
                &shape,
                &mem,
                DataPlace {
                    in_file: layout == "compact"
                        || (layout == "contiguous" && offset != HADDR_UNDEF),
                    stored_bytes,
                    raw_offset: raw_offset.filter(|_| stored_bytes >= RAW_READ_MIN),
                },
                &what,
            )?),
        };
        Ok(H5Dataset {
            dtype,
            shape,
            data,
            attrs,
            storage: Some(StorageInfo {
                layout,
                stored_bytes,
                filters,
                raw_offset,
            }),
        })
    }

    /// The dtype of a dataset of file type `ty` and how to read it.
    fn dataset_type(&self, ty: &Id, attrs: &Attrs, what: &str) -> Result<(DType, Mem)> {
        let t = ty.id();
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        let class = unsafe { h5t::H5Tget_class(t) };
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        let size = unsafe { h5t::H5Tget_size(t) };
        let unsupported = |detail: String| {
            self.ctx
                .fail(format!("{what} has an unsupported datatype: {detail}"))
        };
        let fixed = |dtype: DType, mem: i64| -> Result<(DType, Mem)> {
            Ok((dtype, Mem::Fixed(ffi::copy_type(&self.ctx, mem)?)))
        };
        match class {
            H5T_class_t::H5T_INTEGER => {
                // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
                let signed = unsafe { h5t::H5Tget_sign(t) } == H5T_sign_t::H5T_SGN_2;
                let (dtype, mem) = match (size, signed) {
                    (1, true) => (DType::I8, *h5t::H5T_STD_I8LE),
                    (2, true) => (DType::I16, *h5t::H5T_STD_I16LE),
                    (4, true) => (DType::I32, *h5t::H5T_STD_I32LE),
                    (8, true) => (DType::I64, *h5t::H5T_STD_I64LE),
                    (1, false) => (DType::U8, *h5t::H5T_STD_U8LE),
                    (2, false) => (DType::U16, *h5t::H5T_STD_U16LE),
                    (4, false) => (DType::U32, *h5t::H5T_STD_U32LE),
                    (8, false) => (DType::U64, *h5t::H5T_STD_U64LE),
                    _ => return Err(unsupported(format!("{size}-byte integer"))),
                };
                fixed(dtype, mem)
            }
            H5T_class_t::H5T_FLOAT => match size {
                2 => {
                    let (mut spos, mut epos, mut esize, mut mpos, mut msize) = (0, 0, 0, 0, 0);
                    // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
                    let ret = unsafe {
                        h5t::H5Tget_fields(
                            t, &mut spos, &mut epos, &mut esize, &mut mpos, &mut msize,
                        )
                    };
                    self.ctx
                        .check(ret, &|| format!("cannot read the float layout of {what}"))?;
                    let (dtype, mem) = match (spos, epos, esize, mpos, msize) {
                        (15, 10, 5, 0, 10) => (DType::F16, ffi::half_type(&self.ctx, 10, 5, 15)?),
                        (15, 7, 8, 0, 7) => (DType::BF16, ffi::half_type(&self.ctx, 7, 8, 127)?),
                        f => return Err(unsupported(format!("16-bit float with fields {f:?}"))),
                    };
                    Ok((dtype, Mem::Fixed(mem)))
                }
                4 => fixed(DType::F32, *h5t::H5T_IEEE_F32LE),
                8 => fixed(DType::F64, *h5t::H5T_IEEE_F64LE),
                _ => Err(unsupported(format!("{size}-byte float"))),
            },
            H5T_class_t::H5T_OPAQUE => {
                // h5py stores ml_dtypes types (bfloat16, float8_*) as opaque; Keras marks
                // bfloat16 with a `dtype` attribute in .weights.h5, legacy .h5 has no marker.
                let marked = match attrs.get("dtype").and_then(AttrValue::as_string) {
                    Some(Ok(name)) => DType::from_name(&name).ok(),
                    _ => None,
                };
                let dtype = match marked {
                    Some(d) if d.size() == Some(size) => d,
                    _ if size == 2 => DType::BF16,
                    _ => {
                        return Err(unsupported(format!(
                            "{size}-byte opaque type without a dtype attribute"
                        )))
                    }
                };
                Ok((dtype, Mem::Fixed(ffi::copy_type(&self.ctx, t)?)))
            }
            H5T_class_t::H5T_ENUM if self.is_bool_enum(ty)? => {
                Ok((DType::Bool, Mem::Fixed(ffi::copy_type(&self.ctx, t)?)))
            }
            H5T_class_t::H5T_COMPOUND if size == 8 || size == 16 => {
                let names = ffi::member_names(&self.ctx, t)?;
                let part = size / 2;
                let floats = (0..2).all(|i| {
                    // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
                    let m = unsafe { h5t::H5Tget_member_type(t, i) };
                    if m < 0 {
                        return false;
                    }
                    // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
                    let ok = unsafe { h5t::H5Tget_class(m) } == H5T_class_t::H5T_FLOAT
                        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
                        && unsafe { h5t::H5Tget_size(m) } == part;
                    // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
                    unsafe { h5t::H5Tclose(m) };
                    ok
                });
                if names != ["r", "i"] || !floats {
                    return Err(unsupported(format!(
                        "compound {names:?} (not h5py's complex)"
                    )));
                }
                let dtype = if part == 4 { DType::C64 } else { DType::C128 };
                Ok((dtype, Mem::Fixed(ffi::complex_type(&self.ctx, part)?)))
            }
            H5T_class_t::H5T_STRING => Ok((DType::String, self.string_mem(ty, what)?.0)),
            _ => Err(unsupported(format!(
                "{} of {size} bytes",
                ffi::class_name(class)
            ))),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn dataset_values(
        &mut self,
        did: i64,
        space: &Id,
        dtype: DType,
        shape: &[u64],
        mem: &Mem,
        place: DataPlace,
        what: &str,
    ) -> Result<TensorData<'static>> {
        let count = crate::tensor::num_elements(shape).map_err(|e| e.in_file(self.ctx.path))?;
        if let Mem::Fixed(ty) = mem {
            let declared = byte_size(dtype, shape).map_err(|e| e.in_file(self.ctx.path))?;
            self.charge_values(declared, place, what)?;
            let n = usize::try_from(declared)
                .map_err(|_| self.ctx.fail(format!("{what} is too large for memory")))?;
            let mut buf: Vec<u8> = Vec::new();
            buf.try_reserve_exact(n).map_err(|_| {
                self.ctx
                    .fail(format!("{what}: cannot allocate {n} bytes for its values"))
            })?;
            if let Some(offset) = place.raw_offset {
                buf.resize(n, 0);
                self.progress.add_total(declared);
                self.raw
                    .insert(what.trim_start_matches("dataset ").to_string(), offset);
                return Ok(TensorData::Bytes(Cow::Owned(buf)));
            }
            if n > 0 {
                // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
                let ret = unsafe {
                    H5Dread(
                        did,
                        ty.id(),
                        H5S_ALL,
                        H5S_ALL,
                        H5P_DEFAULT,
                        buf.spare_capacity_mut().as_mut_ptr().cast::<c_void>(),
                    )
                };
                self.ctx.check(ret, &|| format!("cannot read {what}"))?;
                // SAFETY: H5Dread succeeded with an all-selection, writing all `n` bytes.
                unsafe { buf.set_len(n) };
                self.progress.add_total(declared);
                self.progress.advance(declared);
            }
            if dtype == DType::Bool {
                for b in &mut buf {
                    *b = u8::from(*b != 0);
                }
            }
            return Ok(TensorData::Bytes(Cow::Owned(buf)));
        }
        if let Mem::VlenStr(ty) = mem {
            // Bound the element count by the file, then the payload by the remaining budget.
            if count.saturating_mul(VLEN_REF_BYTES) > self.file_len {
                return Err(self.ctx.fail(format!(
                    "{what} declares {count} strings, more than the file can hold"
                )));
            }
            self.check_vlen_lengths(
                count,
                // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
                &|m, buf| unsafe { H5Dread(did, m, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) },
                what,
            )?;
            let mut need: hsize_t = 0;
            self.ctx.check(
                // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
                unsafe { H5Dvlen_get_buf_size(did, ty.id(), space.id(), &mut need) },
                &|| format!("cannot size {what}"),
            )?;
            if need > self.file_budget {
                return Err(self.ctx.fail(format!(
                    "{what} holds {need} bytes of strings, more than the file can hold"
                )));
            }
        }
        let items = self.read_strings(
            mem,
            count,
            // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
            |m, buf| unsafe { H5Dread(did, m, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) },
            space,
            what,
        )?;
        Ok(TensorData::Strings(
            items.into_iter().map(Cow::Owned).collect(),
        ))
    }

    /// Charge `declared` bytes of a dataset's values to the right budget.
    fn charge_values(&mut self, declared: u64, place: DataPlace, what: &str) -> Result<()> {
        if place.in_file {
            return self.charge_file(declared, what);
        }
        // Chunked (maybe compressed) or not yet allocated: values are decoded or filled in.
        if declared > self.file_len && declared / MAX_RATIO > place.stored_bytes {
            return Err(self.ctx.fail(format!(
                "{what} declares {declared} bytes from {} stored bytes (ratio above {MAX_RATIO}); \
                 refused as a decompression bomb",
                place.stored_bytes
            )));
        }
        if declared > self.inflate_budget {
            return Err(self.ctx.fail(format!(
                "{what} declares {declared} bytes; with the other compressed or unallocated \
                 datasets this exceeds the {MAX_INFLATED}-byte limit"
            )));
        }
        self.inflate_budget -= declared;
        Ok(())
    }
}

/// Where a dataset's values live, for the size budgets.
#[derive(Clone, Copy)]
struct DataPlace {
    /// Stored uncompressed inside the file (allocated contiguous or compact layout).
    in_file: bool,
    /// Bytes the values occupy in the file.
    stored_bytes: u64,
    /// Where the bytes start, when they are to be read directly (see [`read_raw`]); checked to
    /// lie inside the file.
    raw_offset: Option<u64>,
}

/// Strip the padding of a fixed-length string.
fn unpad(raw: &[u8], pad: H5T_str_t) -> Vec<u8> {
    match pad {
        H5T_str_t::H5T_STR_NULLTERM => {
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            raw[..end].to_vec()
        }
        H5T_str_t::H5T_STR_SPACEPAD => {
            let end = raw.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
            raw[..end].to_vec()
        }
        _ => {
            let end = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            raw[..end].to_vec()
        }
    }
}

/// The attribute value for strings read from the file.
fn string_attr(items: Vec<Vec<u8>>, scalar: bool, vlen: bool, utf8: bool) -> AttrValue {
    if scalar {
        let item = items.into_iter().next().unwrap_or_default();
        return match String::from_utf8(item) {
            Ok(s) if vlen && utf8 => AttrValue::Str(s),
            Ok(s) => AttrValue::Bytes(s.into_bytes()),
            Err(e) => AttrValue::Bytes(e.into_bytes()),
        };
    }
    if !vlen {
        return AttrValue::FixedBytesList(items);
    }
    if utf8 && items.iter().all(|b| std::str::from_utf8(b).is_ok()) {
        return AttrValue::StrList(
            items
                .into_iter()
                .map(|b| String::from_utf8(b).unwrap_or_default())
                .collect(),
        );
    }
    AttrValue::BytesList(items)
}
