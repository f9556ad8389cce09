//! Checked wrappers over the libhdf5 C API: the library lock, owned identifiers, error messages
//! and the datatypes h5py uses. Everything here expects to run inside [`locked`].

use std::ffi::{CStr, CString};
use std::io;
use std::os::raw::{c_char, c_int, c_uint, c_void};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;

use hdf5_sys::h5::{herr_t, hsize_t, H5_index_t, H5_iter_order_t};
use hdf5_sys::h5a::{H5A_info_t, H5Aiterate2};
use hdf5_sys::h5f::H5F_libver_t;
use hdf5_sys::h5fd::{H5FD_file_image_callbacks_t, H5FD_file_image_op_t};
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5l::{H5L_info2_t, H5Literate2};
use hdf5_sys::h5p::{
    H5Pcreate, H5Pset_char_encoding, H5Pset_fapl_core, H5Pset_file_image,
    H5Pset_file_image_callbacks, H5Pset_file_locking, H5Pset_libver_bounds, H5Pset_obj_track_times,
    H5P_CLS_DATASET_CREATE, H5P_CLS_FILE_ACCESS, H5P_CLS_GROUP_CREATE, H5P_CLS_LINK_CREATE,
};
use hdf5_sys::h5s::{H5S_class_t, H5Screate, H5Screate_simple};
use hdf5_sys::h5t::{self, H5T_class_t, H5T_cset_t, H5T_str_t};

use crate::error::{Error, Location, Result};

/// Run `f` holding the library's global lock, with libhdf5's automatic error printing off.
pub(super) fn locked<T>(f: impl FnOnce() -> T) -> T {
    // Initialises the library on first use (H5open, no atexit cleanup) and turns off the
    // printing of error stacks to stderr; it takes the lock itself.
    hdf5::silence_errors(true);
    let _guard = hdf5_sys::LOCK.lock();
    f()
}

/// The message of libhdf5's current error stack (which this clears).
fn last_error() -> String {
    match hdf5::Error::query() {
        Ok(e) => e.to_string(),
        Err(e) => e.to_string(),
    }
}

/// Whether errors are reported as format errors (reading) or I/O errors (writing).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Read,
    Write,
}

/// The file being worked on, for error messages.
#[derive(Clone, Copy)]
pub(super) struct Ctx<'p> {
    pub path: &'p Path,
    pub mode: Mode,
}

impl Ctx<'_> {
    /// An error about the file (not from libhdf5).
    pub fn fail(&self, msg: impl Into<String>) -> Error {
        match self.mode {
            Mode::Read => Error::format_in(self.path, msg),
            Mode::Write => Error::io(self.path, io::Error::other(msg.into())),
        }
    }

    /// An error from libhdf5, with what was being done.
    pub fn h5_fail(&self, what: &dyn Fn() -> String) -> Error {
        self.fail(format!("{}: {}", what(), last_error()))
    }

    /// A refusal to read something that reaches outside the file.
    pub fn unsafe_content(&self, msg: String) -> Error {
        Error::Unsafe {
            at: Location(Some(self.path.to_path_buf())),
            msg,
        }
    }

    /// Check an `herr_t`.
    pub fn check(&self, ret: herr_t, what: &dyn Fn() -> String) -> Result<()> {
        if ret < 0 {
            Err(self.h5_fail(what))
        } else {
            Ok(())
        }
    }

    /// Take ownership of an identifier returned by libhdf5, or report its failure.
    pub fn own(&self, id: hid_t, kind: Kind, what: &dyn Fn() -> String) -> Result<Id> {
        if id < 0 {
            Err(self.h5_fail(what))
        } else {
            Ok(Id { id, kind })
        }
    }
}

/// Which `H5?close` releases an identifier.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    File,
    Group,
    Dataset,
    Attr,
    Type,
    Space,
    Plist,
    Object,
}

/// An owned libhdf5 identifier, closed on drop (always under the lock: ids never leave
/// [`locked`]).
pub(super) struct Id {
    id: hid_t,
    kind: Kind,
}

impl Id {
    pub fn id(&self) -> hid_t {
        self.id
    }

    /// Close now, reporting failure (for files, where closing flushes).
    pub fn close(self, ctx: &Ctx<'_>, what: &dyn Fn() -> String) -> Result<()> {
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        let ret = unsafe { close_id(self.id, self.kind) };
        std::mem::forget(self);
        ctx.check(ret, what)
    }
}

unsafe fn close_id(id: hid_t, kind: Kind) -> herr_t {
    // SAFETY: `id` is a live identifier of `kind`, owned by the caller.
    unsafe {
        match kind {
            Kind::File => hdf5_sys::h5f::H5Fclose(id),
            Kind::Group => hdf5_sys::h5g::H5Gclose(id),
            Kind::Dataset => hdf5_sys::h5d::H5Dclose(id),
            Kind::Attr => hdf5_sys::h5a::H5Aclose(id),
            Kind::Type => hdf5_sys::h5t::H5Tclose(id),
            Kind::Space => hdf5_sys::h5s::H5Sclose(id),
            Kind::Plist => hdf5_sys::h5p::H5Pclose(id),
            Kind::Object => hdf5_sys::h5o::H5Oclose(id),
        }
    }
}

impl Drop for Id {
    fn drop(&mut self) {
        // SAFETY: we own the identifier; errors on close of a read-only object are irrelevant.
        unsafe {
            close_id(self.id, self.kind);
        }
    }
}

/// A C string for libhdf5, refusing interior NULs.
pub(super) fn cstring(s: impl AsRef<[u8]>) -> Result<CString> {
    CString::new(s.as_ref()).map_err(|_| {
        Error::invalid(format!(
            "{:?} contains a NUL byte, which HDF5 names and strings cannot hold",
            String::from_utf8_lossy(s.as_ref())
        ))
    })
}

/// A path as a C string.
pub(super) fn path_cstring(path: &Path) -> Result<CString> {
    cstring(path.as_os_str().as_bytes())
}

/// File access properties: the 1.8-compatible earliest format (superblock 0, symbol-table
/// groups, as h5py writes by default) and no file locking (reads of read-only media, NFS).
pub(super) fn fapl(ctx: &Ctx<'_>) -> Result<Id> {
    let p = ctx.own(
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        unsafe { H5Pcreate(*H5P_CLS_FILE_ACCESS) },
        Kind::Plist,
        &|| "cannot create file access properties".into(),
    )?;
    ctx.check(
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        unsafe {
            H5Pset_libver_bounds(
                p.id(),
                H5F_libver_t::H5F_LIBVER_EARLIEST,
                H5F_libver_t::H5F_LIBVER_V18,
            )
        },
        &|| "cannot set format version bounds".into(),
    )?;
    // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
    ctx.check(unsafe { H5Pset_file_locking(p.id(), 0, 1) }, &|| {
        "cannot turn off file locking".into()
    })?;
    Ok(p)
}

/// A file image that libhdf5's in-memory ("core") driver reads in place: the callbacks below
/// hand it these bytes instead of letting it allocate and copy them (twice: into the property
/// list, then into the open file).
pub(super) struct Image {
    ptr: *const u8,
    len: usize,
}

impl Image {
    pub fn new(bytes: &[u8]) -> Box<Self> {
        Box::new(Self {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        })
    }
}

// libhdf5 asks for "memory" for the image when the property is set, copied and when the file
// opens; every answer is the caller's buffer, and every "copy" is of that buffer onto itself.
// The file is opened read-only, so libhdf5 never writes to, grows or frees it.

extern "C" fn image_malloc(
    size: usize,
    _op: H5FD_file_image_op_t,
    udata: *mut c_void,
) -> *mut c_void {
    // SAFETY: `udata` is the `Image` box that `image_fapl`'s caller keeps alive until the
    // property list and the file are closed.
    let image = unsafe { &*(udata as *const Image) };
    if size == image.len {
        image.ptr as *mut c_void
    } else {
        ptr::null_mut()
    }
}

extern "C" fn image_memcpy(
    dest: *mut c_void,
    src: *const c_void,
    _size: usize,
    _op: H5FD_file_image_op_t,
    _udata: *mut c_void,
) -> *mut c_void {
    if std::ptr::eq(dest, src) {
        dest
    } else {
        ptr::null_mut() // never asked for: every buffer is the caller's
    }
}

extern "C" fn image_realloc(
    _ptr: *mut c_void,
    _size: usize,
    _op: H5FD_file_image_op_t,
    _udata: *mut c_void,
) -> *mut c_void {
    ptr::null_mut() // read-only: the image never grows
}

extern "C" fn image_free(
    _ptr: *mut c_void,
    _op: H5FD_file_image_op_t,
    _udata: *mut c_void,
) -> herr_t {
    0 // the caller owns the buffer
}

extern "C" fn image_udata_copy(udata: *mut c_void) -> *mut c_void {
    udata
}

extern "C" fn image_udata_free(_udata: *mut c_void) -> herr_t {
    0
}

/// File access properties ([`fapl`]'s) that open `image` with the in-memory driver, without
/// copying it. `image` must outlive the property list and every file opened with it.
pub(super) fn image_fapl(ctx: &Ctx<'_>, image: &Image) -> Result<Id> {
    if image.len == 0 {
        return Err(ctx.fail("cannot open as HDF5: the file is empty"));
    }
    let p = fapl(ctx)?;
    // SAFETY: libhdf5 call on an open property list; no pointers are passed.
    ctx.check(unsafe { H5Pset_fapl_core(p.id(), 1 << 20, 0) }, &|| {
        "cannot select the in-memory driver".into()
    })?;
    let mut callbacks = H5FD_file_image_callbacks_t {
        image_malloc: Some(image_malloc),
        image_memcpy: Some(image_memcpy),
        image_realloc: Some(image_realloc),
        image_free: Some(image_free),
        udata_copy: Some(image_udata_copy),
        udata_free: Some(image_udata_free),
        udata: image as *const Image as *mut c_void,
    };
    ctx.check(
        // SAFETY: libhdf5 copies the callback table; `udata` points to `image`, which the caller
        // keeps alive as documented.
        unsafe { H5Pset_file_image_callbacks(p.id(), &mut callbacks) },
        &|| "cannot set file image callbacks".into(),
    )?;
    ctx.check(
        // SAFETY: `image.ptr` and `image.len` describe the caller's live buffer; through the
        // callbacks libhdf5 keeps this pointer rather than copying (and never writes: read-only).
        unsafe { H5Pset_file_image(p.id(), image.ptr as *mut c_void, image.len) },
        &|| "cannot set the file image".into(),
    )?;
    Ok(p)
}

/// A name for an in-memory file that no file system path can have (the core driver refuses to
/// open an image under the name of an existing file) and no other open image has.
pub(super) fn image_name() -> CString {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    CString::new(format!("/dev/null/kerasafe-image-{n}")).expect("no NUL in the name")
}

/// Link creation properties: UTF-8 names, as h5py sets them.
pub(super) fn lcpl(ctx: &Ctx<'_>) -> Result<Id> {
    let p = ctx.own(
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        unsafe { H5Pcreate(*H5P_CLS_LINK_CREATE) },
        Kind::Plist,
        &|| "cannot create link properties".into(),
    )?;
    ctx.check(
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        unsafe { H5Pset_char_encoding(p.id(), H5T_cset_t::H5T_CSET_UTF8) },
        &|| "cannot set link name encoding".into(),
    )?;
    Ok(p)
}

/// Group or dataset creation properties without timestamps (deterministic files).
pub(super) fn ocpl(ctx: &Ctx<'_>, dataset: bool) -> Result<Id> {
    let cls = if dataset {
        *H5P_CLS_DATASET_CREATE
    } else {
        *H5P_CLS_GROUP_CREATE
    };
    // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
    let p = ctx.own(unsafe { H5Pcreate(cls) }, Kind::Plist, &|| {
        "cannot create object properties".into()
    })?;
    // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
    ctx.check(unsafe { H5Pset_obj_track_times(p.id(), 0) }, &|| {
        "cannot turn off timestamps".into()
    })?;
    Ok(p)
}

/// A scalar dataspace, or a simple one with `dims` (fixed maximum).
pub(super) fn dataspace(ctx: &Ctx<'_>, dims: Option<&[u64]>) -> Result<Id> {
    let id = match dims {
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        None => unsafe { H5Screate(H5S_class_t::H5S_SCALAR) },
        Some(d) => {
            let rank = c_int::try_from(d.len())
                .map_err(|_| Error::invalid(format!("rank {} is too large", d.len())))?;
            // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
            unsafe { H5Screate_simple(rank, d.as_ptr(), ptr::null()) }
        }
    };
    ctx.own(id, Kind::Space, &|| "cannot create dataspace".into())
}

/// A copy of a predefined type (so that it can be owned and closed like any other).
pub(super) fn copy_type(ctx: &Ctx<'_>, predefined: hid_t) -> Result<Id> {
    // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
    ctx.own(unsafe { h5t::H5Tcopy(predefined) }, Kind::Type, &|| {
        "cannot copy datatype".into()
    })
}

/// A variable-length C string type with the given charset (h5py: `str` → UTF-8, `bytes` → ASCII).
pub(super) fn vlen_str_type(ctx: &Ctx<'_>, utf8: bool) -> Result<Id> {
    let t = copy_type(ctx, *h5t::H5T_C_S1)?;
    let what = &|| "cannot build a string datatype".to_string();
    // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
    ctx.check(unsafe { h5t::H5Tset_size(t.id(), h5t::H5T_VARIABLE) }, what)?;
    let cset = if utf8 {
        H5T_cset_t::H5T_CSET_UTF8
    } else {
        H5T_cset_t::H5T_CSET_ASCII
    };
    // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
    ctx.check(unsafe { h5t::H5Tset_cset(t.id(), cset) }, what)?;
    Ok(t)
}

/// A fixed-length NUL-padded ASCII string type of `width` bytes (NumPy `S<width>`).
pub(super) fn fixed_str_type(ctx: &Ctx<'_>, width: usize, pad: H5T_str_t) -> Result<Id> {
    let t = copy_type(ctx, *h5t::H5T_C_S1)?;
    let what = &|| "cannot build a string datatype".to_string();
    // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
    ctx.check(unsafe { h5t::H5Tset_size(t.id(), width.max(1)) }, what)?;
    // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
    ctx.check(unsafe { h5t::H5Tset_strpad(t.id(), pad) }, what)?;
    Ok(t)
}

/// A little-endian 2-byte float with the given sign/exponent/mantissa layout — h5py's float16
/// recipe (`(15, 10, 5, 0, 10)`, bias 15); bfloat16 as a float is `(15, 7, 8, 0, 7)`, bias 127.
pub(super) fn half_type(ctx: &Ctx<'_>, epos: usize, esize: usize, ebias: usize) -> Result<Id> {
    let t = copy_type(ctx, *h5t::H5T_IEEE_F32LE)?;
    let what = &|| "cannot build a 16-bit float datatype".to_string();
    let msize = 15 - esize;
    ctx.check(
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        unsafe { h5t::H5Tset_fields(t.id(), 15, epos, esize, 0, msize) },
        what,
    )?;
    // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
    ctx.check(unsafe { h5t::H5Tset_size(t.id(), 2) }, what)?;
    // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
    ctx.check(unsafe { h5t::H5Tset_ebias(t.id(), ebias) }, what)?;
    Ok(t)
}

/// An opaque type of `size` bytes with an empty tag (h5py's mapping of `ml_dtypes` types).
pub(super) fn opaque_type(ctx: &Ctx<'_>, size: usize) -> Result<Id> {
    ctx.own(
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        unsafe { h5t::H5Tcreate(H5T_class_t::H5T_OPAQUE, size) },
        Kind::Type,
        &|| "cannot build an opaque datatype".into(),
    )
}

/// h5py's bool: an enum over little-endian int8 with `FALSE = 0`, `TRUE = 1`.
pub(super) fn bool_type(ctx: &Ctx<'_>) -> Result<Id> {
    let t = ctx.own(
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        unsafe { h5t::H5Tenum_create(*h5t::H5T_STD_I8LE) },
        Kind::Type,
        &|| "cannot build the bool datatype".into(),
    )?;
    for (name, value) in [(c"FALSE", 0i8), (c"TRUE", 1i8)] {
        ctx.check(
            // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
            unsafe {
                h5t::H5Tenum_insert(
                    t.id(),
                    name.as_ptr(),
                    (&value as *const i8).cast::<c_void>(),
                )
            },
            &|| "cannot build the bool datatype".into(),
        )?;
    }
    Ok(t)
}

/// h5py's complex: a compound `{r: float, i: float}` of little-endian floats of `part` bytes.
pub(super) fn complex_type(ctx: &Ctx<'_>, part: usize) -> Result<Id> {
    let float = if part == 4 {
        *h5t::H5T_IEEE_F32LE
    } else {
        *h5t::H5T_IEEE_F64LE
    };
    let t = ctx.own(
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        unsafe { h5t::H5Tcreate(H5T_class_t::H5T_COMPOUND, 2 * part) },
        Kind::Type,
        &|| "cannot build a complex datatype".into(),
    )?;
    for (name, off) in [(c"r", 0), (c"i", part)] {
        ctx.check(
            // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
            unsafe { h5t::H5Tinsert(t.id(), name.as_ptr(), off, float) },
            &|| "cannot build a complex datatype".into(),
        )?;
    }
    Ok(t)
}

/// The links of a group in name order: (name bytes, raw link type).
pub(super) fn list_links(ctx: &Ctx<'_>, group: hid_t, what: &str) -> Result<Vec<(Vec<u8>, c_int)>> {
    unsafe extern "C" fn cb(
        _group: hid_t,
        name: *const c_char,
        info: *const H5L_info2_t,
        data: *mut c_void,
    ) -> herr_t {
        // SAFETY: libhdf5 passes a valid name and info; `data` is the Vec below. The link type
        // is read as a raw int because user-defined types are not variants of the Rust enum.
        unsafe {
            let out = &mut *data.cast::<Vec<(Vec<u8>, c_int)>>();
            let kind = ptr::addr_of!((*info).type_).cast::<c_int>().read();
            out.push((CStr::from_ptr(name).to_bytes().to_vec(), kind));
        }
        0
    }
    let mut out: Vec<(Vec<u8>, c_int)> = Vec::new();
    let mut idx: hsize_t = 0;
    // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
    let ret = unsafe {
        H5Literate2(
            group,
            H5_index_t::H5_INDEX_NAME,
            H5_iter_order_t::H5_ITER_INC,
            &mut idx,
            Some(cb),
            (&mut out as *mut Vec<(Vec<u8>, c_int)>).cast::<c_void>(),
        )
    };
    ctx.check(ret, &|| format!("cannot list the members of {what}"))?;
    Ok(out)
}

/// The attribute names of an object in name order.
pub(super) fn list_attrs(ctx: &Ctx<'_>, obj: hid_t, what: &str) -> Result<Vec<CString>> {
    unsafe extern "C" fn cb(
        _loc: hid_t,
        name: *const c_char,
        _info: *const H5A_info_t,
        data: *mut c_void,
    ) -> herr_t {
        // SAFETY: libhdf5 passes a valid name; `data` is the Vec below.
        unsafe {
            let out = &mut *data.cast::<Vec<CString>>();
            out.push(CStr::from_ptr(name).to_owned());
        }
        0
    }
    let mut out: Vec<CString> = Vec::new();
    let mut idx: hsize_t = 0;
    // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
    let ret = unsafe {
        H5Aiterate2(
            obj,
            H5_index_t::H5_INDEX_NAME,
            H5_iter_order_t::H5_ITER_INC,
            &mut idx,
            Some(cb),
            (&mut out as *mut Vec<CString>).cast::<c_void>(),
        )
    };
    ctx.check(ret, &|| format!("cannot list the attributes of {what}"))?;
    Ok(out)
}

/// Name of a type class, for messages.
pub(super) fn class_name(class: H5T_class_t) -> &'static str {
    use H5T_class_t::*;
    match class {
        H5T_INTEGER => "integer",
        H5T_FLOAT => "float",
        H5T_TIME => "time",
        H5T_STRING => "string",
        H5T_BITFIELD => "bitfield",
        H5T_OPAQUE => "opaque",
        H5T_COMPOUND => "compound",
        H5T_REFERENCE => "reference",
        H5T_ENUM => "enum",
        H5T_VLEN => "variable-length sequence",
        H5T_ARRAY => "array",
        H5T_COMPLEX => "complex",
        _ => "unknown",
    }
}

/// The names of an enum or compound type's members.
pub(super) fn member_names(ctx: &Ctx<'_>, t: hid_t) -> Result<Vec<String>> {
    // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
    let n = unsafe { h5t::H5Tget_nmembers(t) };
    if n < 0 {
        return Err(ctx.h5_fail(&|| "cannot read datatype members".into()));
    }
    let mut names = Vec::new();
    for i in 0..n as c_uint {
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        let p = unsafe { h5t::H5Tget_member_name(t, i) };
        if p.is_null() {
            return Err(ctx.h5_fail(&|| "cannot read datatype member name".into()));
        }
        // SAFETY: libhdf5 returned a NUL-terminated string it allocated; we free it below.
        let name = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
        // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
        unsafe {
            hdf5_sys::h5::H5free_memory(p.cast::<c_void>());
        }
        names.push(name);
    }
    Ok(names)
}

/// Tag of the opaque memory type that variable-length elements are read into *raw*: their
/// on-disk form (4-byte sequence length, global heap address, 4-byte index), unconverted.
const RAW_VLEN_TAG: &CStr = c"kerasafe raw variable-length reference";

/// A soft conversion from any variable-length type to the [`RAW_VLEN_TAG`] opaque type of the
/// same size: a no-op, so the destination holds the file's own bytes. libhdf5's real conversion
/// allocates (and zeroes) `sequence length` bytes *before* it looks at the heap object, so a
/// crafted length (up to 4 GiB per string) costs that much memory; reading the lengths this way
/// first lets [`raw_vlen_type`]'s callers refuse them.
extern "C" fn raw_vlen_conv(
    src_id: hid_t,
    dst_id: hid_t,
    cdata: *mut h5t::H5T_cdata_t,
    _nelmts: usize,
    _buf_stride: usize,
    _bkg_stride: usize,
    _buf: *mut c_void,
    _bkg: *mut c_void,
    _dxpl: hid_t,
) -> herr_t {
    if cdata.is_null() {
        return -1;
    }
    // SAFETY: libhdf5 passes a valid conversion data struct for the call's duration.
    let cdata = unsafe { &mut *cdata };
    match cdata.command {
        h5t::H5T_cmd_t::H5T_CONV_INIT => {
            // SAFETY: plain libhdf5 calls on the identifiers libhdf5 handed us.
            let ours = unsafe {
                if h5t::H5Tget_class(dst_id) != H5T_class_t::H5T_OPAQUE
                    || h5t::H5Tget_size(dst_id) != h5t::H5Tget_size(src_id)
                    || h5t::H5Tget_size(dst_id) == 0
                {
                    false
                } else {
                    let tag = h5t::H5Tget_tag(dst_id);
                    if tag.is_null() {
                        false
                    } else {
                        let same = CStr::from_ptr(tag) == RAW_VLEN_TAG;
                        hdf5_sys::h5::H5free_memory(tag.cast::<c_void>());
                        same
                    }
                }
            };
            cdata.need_bkg = h5t::H5T_bkg_t::H5T_BKG_NO;
            if ours {
                0
            } else {
                -1
            }
        }
        // Same size, in place: the buffer already holds the source bytes.
        h5t::H5T_cmd_t::H5T_CONV_CONV | h5t::H5T_cmd_t::H5T_CONV_FREE => 0,
    }
}

/// An opaque type of `size` bytes (the on-disk size of one variable-length element: 8 plus the
/// file's address size) into which variable-length data reads raw; see [`raw_vlen_conv`].
pub(super) fn raw_vlen_type(ctx: &Ctx<'_>, size: usize) -> Result<Id> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        // SAFETY: template types for the soft registration (only their classes matter), closed
        // right after; the callback is a plain `extern "C"` function with libhdf5's signature.
        unsafe {
            let src = h5t::H5Tvlen_create(*h5t::H5T_NATIVE_UCHAR);
            let dst = h5t::H5Tcreate(H5T_class_t::H5T_OPAQUE, 1);
            let ok = src >= 0
                && dst >= 0
                && h5t::H5Tregister(
                    h5t::H5T_pers_t::H5T_PERS_SOFT,
                    c"kerasafe_raw_vlen".as_ptr(),
                    src,
                    dst,
                    Some(raw_vlen_conv),
                ) >= 0;
            if src >= 0 {
                h5t::H5Tclose(src);
            }
            if dst >= 0 {
                h5t::H5Tclose(dst);
            }
            ok
        }
    });
    if !ok {
        return Err(ctx.h5_fail(&|| "cannot register the raw variable-length reader".into()));
    }
    let t = ctx.own(
        // SAFETY: libhdf5 call on identifiers that are open (owned `Id`s or just returned and checked); no pointers are passed.
        unsafe { h5t::H5Tcreate(H5T_class_t::H5T_OPAQUE, size) },
        Kind::Type,
        &|| "cannot build an opaque datatype".into(),
    )?;
    ctx.check(
        // SAFETY: the identifiers are open (owned `Id`s or just returned and checked) and the pointers are to live buffers of the sizes libhdf5 expects for this call.
        unsafe { h5t::H5Tset_tag(t.id(), RAW_VLEN_TAG.as_ptr()) },
        &|| "cannot tag an opaque datatype".into(),
    )?;
    Ok(t)
}
