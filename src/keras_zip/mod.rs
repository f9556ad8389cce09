//! The Keras 3 `.keras` archive (spec §4.1): a zip of `metadata.json`, `config.json`,
//! `model.weights.h5` and `assets/…` files, all stored uncompressed.
//!
//! [`read_archive`] validates the whole central directory before anything is decompressed:
//! member names that could escape a directory (`..`, absolute, backslashes, drive letters),
//! symlink and encrypted entries, duplicate or overlapping members, unsupported compression and
//! sizes that do not fit the archive (zip bombs) are refused; every member read is then capped
//! at its declared size and CRC-checked. A file that is not a zip but an HDF5 file gets a message
//! saying it is a legacy `.h5` model under a `.keras` name (TensorFlow ≤ 2.12 wrote those); use
//! [`sniff`] to route files before reading.
//!
//! The archive's bytes are mapped ([`read_archive`]) or already in memory
//! ([`read_archive_bytes`], for object storage). [`KerasArchive::read_weights`] hands the stored
//! `model.weights.h5` member to libhdf5's in-memory driver where it lies (no copy, no temporary
//! file) and checks its CRC-32 alongside; a compressed member is inflated into memory first.
//!
//! [`write_archive`] writes the weights once: libhdf5 writes `model.weights.h5` into the new
//! archive behind a 512-byte user block, where the member's zip header then goes (so the archive
//! is also an HDF5 file libhdf5 can open); `metadata.json`, `config.json` and the assets follow,
//! then the central directory. Members are `ZIP_STORED`, with the 1980-01-01 timestamp Python's
//! `zipfile` gives `metadata.json`/`config.json` (for every member, so that equal models give
//! equal bytes), written through a temporary sibling renamed into place. Keras and `zipfile`
//! find members by name, not position; only the order differs from Keras's own archives.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use zip::read::ZipArchive;
use zip::CompressionMethod;

use crate::error::{Error, IoContext, Location, Result};
use crate::file_bytes::{self, FileBytes};
use crate::fsutil;
use crate::h5::{self, H5Group, H5Node, Values, HDF5_SIGNATURE};
use crate::progress::{self, CountingWriter, Progress};

/// The model config member.
pub const CONFIG_JSON: &str = "config.json";
/// The informational metadata member (`keras_version`, `date_saved`).
pub const METADATA_JSON: &str = "metadata.json";
/// The weights member (HDF5, spec §4.4).
pub const WEIGHTS_H5: &str = "model.weights.h5";
/// The NumPy weights member some Keras versions accept instead (never written here).
pub const WEIGHTS_NPZ: &str = "model.weights.npz";
/// The prefix of asset members.
pub const ASSETS_PREFIX: &str = "assets/";

/// Uncompressed bytes all members together may have: this many times the archive's size, plus
/// [`EXPANSION_FLOOR`]. Keras stores members uncompressed; real weights deflate by a few times at
/// most, so only a zip bomb (or an all-zero model) comes near it.
const MAX_EXPANSION_RATIO: u64 = 64;
/// See [`MAX_EXPANSION_RATIO`].
const EXPANSION_FLOOR: u64 = 256 << 20;
/// Bytes of a compressed weights member inflated first, to find the HDF5 signature before the
/// whole member is.
const SNIFF_BYTES: u64 = 1 << 20;
/// DEFLATE cannot expand more than about 1032:1; a member declaring more is lying.
const MAX_DEFLATE_RATIO: u64 = 1100;
/// Largest JSON member read into memory.
const MAX_JSON: u64 = 1 << 30;

/// What a file is, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A zip archive (a `.keras` model).
    Zip,
    /// An HDF5 file (a legacy `.h5` model or weights, possibly named `.keras`).
    Hdf5,
    /// A directory (an unzipped `.keras` model, or a SavedModel).
    Directory,
    /// Anything else (including empty files).
    Other,
}

/// Tell zip archives, HDF5 files and directories apart by content, not by name.
pub fn sniff(path: &Path) -> Result<FileKind> {
    let meta = std::fs::metadata(path).at(path)?;
    if meta.is_dir() {
        return Ok(FileKind::Directory);
    }
    let mut head = [0u8; 8];
    let mut file = File::open(path).at(path)?;
    let n = read_up_to(&mut file, &mut head).at(path)?;
    let head = &head[..n];
    if is_zip(head) {
        return Ok(FileKind::Zip);
    }
    if head == HDF5_SIGNATURE || h5::is_hdf5(path)? {
        return Ok(FileKind::Hdf5);
    }
    Ok(FileKind::Other)
}

/// [`sniff`] for a whole file held in memory (an object fetched from object storage).
pub fn sniff_bytes(bytes: &[u8]) -> FileKind {
    if is_zip(bytes) {
        FileKind::Zip
    } else if h5::is_hdf5_bytes(bytes) {
        FileKind::Hdf5
    } else {
        FileKind::Other
    }
}

/// Whether `bytes` start with a zip signature (a local file header, or an empty archive's end
/// record).
fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// One file member of an archive (directory entries are not listed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// The member name (`/`-separated, validated).
    pub name: String,
    /// Uncompressed size as declared by the central directory.
    pub size: u64,
    /// Compressed size (equal to `size` for stored members).
    pub compressed_size: u64,
    /// Whether the member is stored uncompressed (Keras stores every member).
    pub stored: bool,
    /// The CRC-32 the central directory declares for its uncompressed bytes.
    pub crc32: u32,
    /// Where its (compressed) bytes start in the archive.
    data_start: Option<u64>,
}

/// An opened, validated `.keras` archive.
pub struct KerasArchive {
    path: PathBuf,
    /// The `config.json` member (required).
    pub config_json: String,
    /// The `metadata.json` member, when present (Keras always writes it; loaders ignore it).
    pub metadata_json: Option<String>,
    /// File members in archive order.
    pub members: Vec<MemberInfo>,
    bytes: FileBytes,
    zip: Mutex<ZipArchive<io::Cursor<FileBytes>>>,
}

impl std::fmt::Debug for KerasArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KerasArchive")
            .field("path", &self.path)
            .field("members", &self.members)
            .finish_non_exhaustive()
    }
}

/// Check a member name: relative, `/`-separated, no `..`/`.`/empty components, no backslashes,
/// NULs or drive letters. Directory entries (trailing `/`) are accepted.
fn check_member_name(name: &str) -> std::result::Result<(), String> {
    let body = name.strip_suffix('/').unwrap_or(name);
    let bad = if body.is_empty() {
        Some("empty name")
    } else if body.starts_with('/') {
        Some("absolute path")
    } else if body.contains('\\') {
        Some("backslash in name")
    } else if body.contains('\0') {
        Some("NUL in name")
    } else if body.split('/').next().is_some_and(|c| c.ends_with(':')) {
        Some("drive letter")
    } else if body
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        Some("'..', '.' or empty path component")
    } else {
        None
    };
    match bad {
        Some(why) => Err(format!("member name {name:?} refused: {why}")),
        None => Ok(()),
    }
}

/// Open and validate the `.keras` archive at `path`, reading `config.json` and `metadata.json`.
pub fn read_archive(path: &Path) -> Result<KerasArchive> {
    match sniff(path)? {
        FileKind::Zip => {}
        FileKind::Hdf5 => {
            return Err(Error::format_in(
                path,
                "not a zip archive but an HDF5 file: a legacy .h5 model saved under a .keras \
                 name (TensorFlow <= 2.12 did this); read it as an .h5 model",
            ))
        }
        FileKind::Directory => {
            return Err(Error::format_in(
                path,
                "is a directory, not a .keras archive (an unzipped Keras model?)",
            ))
        }
        FileKind::Other => {
            return Err(Error::format_in(
                path,
                "not a .keras archive (no zip signature)",
            ))
        }
    }
    read_archive_bytes(path, FileBytes::map(path)?)
}

/// [`read_archive`] for an archive whose bytes are already in memory (fetched from object
/// storage); `name` names it in messages.
pub fn read_archive_bytes(name: &Path, bytes: FileBytes) -> Result<KerasArchive> {
    let path = name;
    if !is_zip(&bytes) {
        let what = if h5::is_hdf5_bytes(&bytes) {
            "an HDF5 file (a legacy .h5 model?)"
        } else {
            "no zip signature"
        };
        return Err(Error::format_in(
            path,
            format!("not a .keras archive ({what})"),
        ));
    }
    let archive_len = bytes.len() as u64;
    let mut zip = ZipArchive::new(io::Cursor::new(bytes.clone()))
        .map_err(|e| Error::format_in(path, format!("not a valid zip archive: {e}")))?;
    if zip.has_duplicate_names() {
        return Err(Error::format_in(
            path,
            "the archive lists a member name twice; refused",
        ));
    }
    let mut members = Vec::new();
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let entry = zip
            .by_index_raw(i)
            .map_err(|e| Error::format_in(path, format!("bad zip entry #{i}: {e}")))?;
        let name = entry
            .name()
            .map_err(|e| Error::format_in(path, format!("bad name of zip entry #{i}: {e}")))?
            .into_owned();
        check_member_name(&name).map_err(|m| Error::format_in(path, m))?;
        if entry.is_symlink() {
            return Err(Error::Unsafe {
                at: Location(Some(path.to_path_buf())),
                msg: format!("member {name:?} is a symbolic link; refused"),
            });
        }
        if entry.encrypted() {
            return Err(Error::format_in(
                path,
                format!("member {name:?} is encrypted"),
            ));
        }
        if entry.is_dir() {
            continue;
        }
        let (size, csize) = (entry.size(), entry.compressed_size());
        let stored = match entry.compression() {
            CompressionMethod::Stored => {
                if size != csize {
                    return Err(Error::format_in(
                        path,
                        format!("stored member {name:?} declares {size} bytes but holds {csize}"),
                    ));
                }
                true
            }
            CompressionMethod::Deflated => {
                if size / MAX_DEFLATE_RATIO > csize {
                    return Err(Error::format_in(
                        path,
                        format!(
                            "member {name:?} declares {size} bytes from {csize} compressed; \
                             refused as a zip bomb"
                        ),
                    ));
                }
                false
            }
            other => {
                return Err(Error::format_in(
                    path,
                    format!("member {name:?} uses unsupported compression {other:?}"),
                ))
            }
        };
        if csize > archive_len {
            return Err(Error::format_in(
                path,
                format!(
                    "member {name:?} declares {csize} bytes, more than the archive's {archive_len}"
                ),
            ));
        }
        total = total.saturating_add(size);
        let (crc32, data_start) = (entry.crc32(), entry.data_start());
        members.push(MemberInfo {
            name,
            size,
            compressed_size: csize,
            stored,
            crc32,
            data_start,
        });
    }
    let expansion_limit = archive_len
        .saturating_mul(MAX_EXPANSION_RATIO)
        .saturating_add(EXPANSION_FLOOR);
    if total > expansion_limit {
        return Err(Error::format_in(
            path,
            format!(
                "members declare {total} uncompressed bytes from a {archive_len}-byte archive; \
                 refused as a zip bomb"
            ),
        ));
    }
    match zip.has_overlapping_entries() {
        Ok(false) => {}
        Ok(true) => {
            return Err(Error::format_in(
                path,
                "members overlap in the archive (zip bomb); refused",
            ))
        }
        Err(e) => return Err(Error::format_in(path, format!("bad zip archive: {e}"))),
    }
    zip.validate_header_consistency().map_err(|e| {
        Error::format_in(path, format!("local and central zip headers disagree: {e}"))
    })?;

    let mut archive = KerasArchive {
        path: path.to_path_buf(),
        config_json: String::new(),
        metadata_json: None,
        members,
        bytes,
        zip: Mutex::new(zip),
    };
    if archive.member(CONFIG_JSON).is_none() {
        return Err(Error::format_in(
            path,
            format!("not a Keras archive: no {CONFIG_JSON} member"),
        ));
    }
    archive.config_json = archive.read_json(CONFIG_JSON)?;
    if archive.member(METADATA_JSON).is_some() {
        archive.metadata_json = Some(archive.read_json(METADATA_JSON)?);
    }
    Ok(archive)
}

impl KerasArchive {
    /// The archive's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The member called `name`.
    pub fn member(&self, name: &str) -> Option<&MemberInfo> {
        self.members.iter().find(|m| m.name == name)
    }

    /// The `model.weights.h5` member, if any.
    pub fn weights_member(&self) -> Option<&MemberInfo> {
        self.member(WEIGHTS_H5)
    }

    /// Asset members (`assets/…`), in archive order.
    pub fn assets(&self) -> impl Iterator<Item = &MemberInfo> {
        self.members
            .iter()
            .filter(|m| m.name.starts_with(ASSETS_PREFIX))
    }

    /// Stream member `name` into `out`, capped at its declared size and CRC-checked.
    fn copy_member(&self, name: &str, out: &mut dyn Write) -> Result<u64> {
        let info = self
            .member(name)
            .ok_or_else(|| Error::format_in(&self.path, format!("no member {name:?}")))?;
        let bad = |e: &dyn std::fmt::Display| {
            Error::format_in(&self.path, format!("cannot read member {name:?}: {e}"))
        };
        let mut zip = self
            .zip
            .lock()
            .map_err(|_| Error::invalid("archive lock poisoned by a panic"))?;
        let entry = zip.by_name(name).map_err(|e| bad(&e))?;
        // One byte more than declared: a longer stream is detected, and reading to the end
        // makes the zip reader verify the CRC.
        let mut limited = entry.take(info.size.saturating_add(1));
        let progress = Progress::current();
        progress.add_total(info.size);
        let mut buf = vec![0u8; 1 << 20];
        let mut n: u64 = 0;
        loop {
            let k = match limited.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(bad(&e)),
            };
            n += k as u64;
            if n > info.size {
                return Err(bad(&format!(
                    "it holds more than the {} bytes it declares",
                    info.size
                )));
            }
            out.write_all(&buf[..k]).map_err(|e| bad(&e))?;
            progress.advance(k as u64);
        }
        if n != info.size {
            return Err(bad(&format!(
                "it holds {n} bytes, not the {} it declares",
                info.size
            )));
        }
        Ok(n)
    }

    /// Refuse a compressed member that does not start like an HDF5 file, having inflated only
    /// its first [`SNIFF_BYTES`] (not the whole of what may be a zip bomb).
    fn check_hdf5_head(&self, name: &str) -> Result<()> {
        let info = self
            .member(name)
            .ok_or_else(|| Error::format_in(&self.path, format!("no member {name:?}")))?;
        let mut zip = self
            .zip
            .lock()
            .map_err(|_| Error::invalid("archive lock poisoned by a panic"))?;
        let bad = |e: &dyn std::fmt::Display| {
            Error::format_in(&self.path, format!("cannot read member {name:?}: {e}"))
        };
        let entry = zip.by_name(name).map_err(|e| bad(&e))?;
        let mut head = Vec::new();
        entry
            .take(info.size.min(SNIFF_BYTES))
            .read_to_end(&mut head)
            .map_err(|e| bad(&e))?;
        match h5::find_signature(&head[..], head.len() as u64) {
            Ok(Some(_)) => Ok(()),
            _ => Err(Error::format_in(
                &self.path,
                format!("member {name:?} is not an HDF5 file (no signature where libhdf5 looks)"),
            )),
        }
    }

    /// The bytes of member `name`.
    pub fn read_member(&self, name: &str) -> Result<Vec<u8>> {
        let size = self
            .member(name)
            .ok_or_else(|| Error::format_in(&self.path, format!("no member {name:?}")))?
            .size;
        let mut out = Vec::new();
        out.try_reserve_exact(usize::try_from(size).unwrap_or(usize::MAX))
            .map_err(|_| {
                Error::format_in(
                    &self.path,
                    format!("member {name:?} ({size} bytes) does not fit in memory"),
                )
            })?;
        self.copy_member(name, &mut out)?;
        Ok(out)
    }

    fn read_json(&self, name: &str) -> Result<String> {
        let size = self.member(name).map_or(0, |m| m.size);
        if size > MAX_JSON {
            return Err(Error::format_in(
                &self.path,
                format!("{name} declares {size} bytes; refusing more than {MAX_JSON}"),
            ));
        }
        String::from_utf8(self.read_member(name)?)
            .map_err(|_| Error::format_in(&self.path, format!("{name} is not UTF-8")))
    }

    /// Copy member `name` to the file `dest` (written through a temporary sibling).
    pub fn extract_member(&self, name: &str, dest: &Path) -> Result<()> {
        fsutil::build_then_replace(dest, |tmp| {
            let mut w = io::BufWriter::with_capacity(1 << 20, File::create_new(tmp).at(dest)?);
            self.copy_member(name, &mut w)?;
            w.flush().at(dest)
        })
    }

    /// Read `model.weights.h5` completely.
    pub fn read_weights(&self) -> Result<H5Group<'static>> {
        self.read_weights_member(Values::All)
    }

    /// Read the structure of `model.weights.h5` (names, attributes, dtypes, shapes; no values).
    pub fn read_weights_structure(&self) -> Result<H5Group<'static>> {
        self.read_weights_member(Values::Skip)
    }

    /// [`Self::read_weights`], leaving large values in the archive ([`Values::Deferred`]): their
    /// datasets' `storage.raw_offset` is where they start in the archive's file (or its bytes,
    /// for an archive held in memory), for the caller to read each when it needs it. A
    /// compressed member is read whole (its values are not in the archive as they are).
    pub fn read_weights_deferred(&self) -> Result<H5Group<'static>> {
        self.read_weights_member(Values::Deferred)
    }

    /// `model.weights.h5` through libhdf5's in-memory driver: a stored member is read where it
    /// lies in the archive's bytes, a compressed one is inflated into memory first. Either way
    /// its CRC-32 is checked before libhdf5 sees a byte (libhdf5 is not robust to damage).
    fn read_weights_member(&self, values: Values) -> Result<H5Group<'static>> {
        let info = self.weights_member().ok_or_else(|| {
            Error::format_in(
                &self.path,
                format!("the archive has no {WEIGHTS_H5} member"),
            )
        })?;
        let Some(bytes) = self.stored_bytes(info)? else {
            self.check_hdf5_head(WEIGHTS_H5)?;
            let inflated = self.read_member(WEIGHTS_H5)?; // CRC-checked by the zip reader
            let values = if values == Values::Deferred {
                Values::All // the inflated bytes go away with this call
            } else {
                values
            };
            let mut tree = self.in_member(h5::read_image(&self.path, &inflated, values))?;
            map_raw_offsets(&mut tree, &|_| None);
            return Ok(tree);
        };
        // An archive on disk whose weights start where libhdf5 looks for a superblock behind a
        // user block (ours do: byte 512) is read through the file itself, not the mapping, so
        // the weights are not counted as this process's memory next to the arrays read.
        let through_file =
            self.bytes.is_mapped() && info.data_start.is_some_and(h5::may_hold_superblock);
        let progress = Progress::current();
        progress.add_total(info.size);
        let crc = if through_file {
            let file = File::open(&self.path).at(&self.path)?;
            let start = info.data_start.unwrap_or_default();
            file_bytes::file_crc32(&file, start, info.size, &progress).at(&self.path)?
        } else {
            file_bytes::zip_crc32(bytes, &progress)
        };
        if crc != info.crc32 {
            return Err(Error::Checksum {
                at: Location(Some(self.path.clone())),
                what: format!("member {WEIGHTS_H5:?}"),
                detail: format!("stored CRC-32 {:#010x}, computed {crc:#010x}", info.crc32),
            });
        }
        // The CRC pass counted every byte; the HDF5 reads are not counted again.
        if through_file {
            return self.in_member(progress::scope(None, || {
                h5::read_file_with(&self.path, values)
            }));
        }
        let mut tree = self.in_member(progress::scope(None, || {
            h5::read_image(&self.path, bytes, values)
        }))?;
        // Offsets into the member's bytes, made offsets into the archive's.
        let start = info.data_start.unwrap_or_default();
        map_raw_offsets(&mut tree, &|at| at.checked_add(start));
        Ok(tree)
    }

    /// The bytes of a stored (uncompressed) member, in place; `None` for compressed members.
    fn stored_bytes(&self, info: &MemberInfo) -> Result<Option<&[u8]>> {
        let (true, Some(start)) = (info.stored, info.data_start) else {
            return Ok(None);
        };
        let range = usize::try_from(start)
            .ok()
            .zip(usize::try_from(info.size).ok())
            .and_then(|(start, len)| Some(start..start.checked_add(len)?))
            .filter(|r| r.end <= self.bytes.len())
            .ok_or_else(|| {
                Error::format_in(
                    &self.path,
                    format!("member {:?} runs past the end of the archive", info.name),
                )
            })?;
        Ok(Some(&self.bytes[range]))
    }

    /// Name the weights member in errors about its HDF5 content.
    fn in_member(&self, result: Result<H5Group<'static>>) -> Result<H5Group<'static>> {
        let here = |at: &Location| at.0.as_deref() == Some(self.path.as_path());
        result.map_err(|e| match e {
            Error::Format { at, msg } if here(&at) => Error::Format {
                at,
                msg: format!("{WEIGHTS_H5}: {msg}"),
            },
            Error::Unsafe { at, msg } if here(&at) => Error::Unsafe {
                at,
                msg: format!("{WEIGHTS_H5}: {msg}"),
            },
            other => other,
        })
    }

    /// Extract every asset member under `dir` (keeping the path below `assets/`), creating
    /// directories as needed; returns the files written.
    pub fn extract_assets(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let mut written = Vec::new();
        for m in self.assets() {
            let rel = &m.name[ASSETS_PREFIX.len()..];
            // Names were validated in read_archive: relative, no `..`, no backslashes.
            let dest = dir.join(rel);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).at(parent)?;
            }
            self.extract_member(&m.name, &dest)?;
            written.push(dest);
        }
        Ok(written)
    }
}

/// Where the weights of a new archive come from.
#[derive(Debug, Clone, Copy)]
pub enum WeightsSource<'a> {
    /// A tree, written as HDF5 by libhdf5 straight into the archive.
    Tree(&'a H5Group<'a>),
    /// An existing HDF5 file, copied in.
    File(&'a Path),
    /// HDF5 bytes in memory.
    Bytes(&'a [u8]),
}

/// The contents of an asset member.
#[derive(Debug, Clone, Copy)]
pub enum AssetData<'a> {
    /// Bytes in memory.
    Bytes(&'a [u8]),
    /// A file, copied in.
    File(&'a Path),
}

/// One asset member: `name` is the path below `assets/` (`"layers/string_lookup/vocabulary.txt"`).
#[derive(Debug, Clone, Copy)]
pub struct Asset<'a> {
    /// Path below `assets/`, `/`-separated.
    pub name: &'a str,
    /// The contents.
    pub data: AssetData<'a>,
}

/// Write a `.keras` archive: `model.weights.h5` (its data at byte 512, see
/// [`WEIGHTS_DATA_START`]), `metadata.json`, `config.json`, then the assets in the order given,
/// all stored uncompressed (ZIP64 records for members of 4 GiB and more), through a temporary
/// sibling renamed into place.
pub fn write_archive(
    path: &Path,
    config_json: &str,
    metadata_json: &str,
    weights: WeightsSource<'_>,
    assets: &[Asset<'_>],
) -> Result<()> {
    write_archive_with(path, config_json, metadata_json, weights, assets, false)
}

/// [`write_archive`] for an artifact being staged: with the weights given as a tree, the
/// archive's SHA-256 is computed while it is written, finished from the file on a thread of its
/// own after, and kept for the artifact's manifest
/// ([`crate::store::manifest::remember_written_partly`]), which the publish then takes. The
/// weights member's CRC-32, which its zip header at the front holds, is computed first, from
/// memory, so that the digest can follow the file front to back while the write runs.
pub fn write_archive_for_artifact(
    path: &Path,
    config_json: &str,
    metadata_json: &str,
    weights: WeightsSource<'_>,
    assets: &[Asset<'_>],
) -> Result<()> {
    write_archive_with(path, config_json, metadata_json, weights, assets, true)
}

fn write_archive_with(
    path: &Path,
    config_json: &str,
    metadata_json: &str,
    weights: WeightsSource<'_>,
    assets: &[Asset<'_>],
    for_artifact: bool,
) -> Result<()> {
    let mut names: Vec<String> = Vec::with_capacity(assets.len());
    for a in assets {
        let name = format!("{ASSETS_PREFIX}{}", a.name);
        if a.name.is_empty() || a.name.ends_with('/') {
            return Err(Error::invalid(format!(
                "asset name {:?} does not name a file",
                a.name
            )));
        }
        check_member_name(&name).map_err(Error::invalid)?;
        names.push(name);
    }
    let mut sorted: Vec<&str> = names.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::invalid(format!("asset {:?} given twice", w[0])));
    }

    // Open the inputs before creating anything, so that a missing file is reported as such.
    let weights_file = match weights {
        WeightsSource::File(p) => Some((File::open(p).at(p)?, p)),
        _ => None,
    };
    let mut others: Vec<(&str, Opened<'_>)> = vec![
        (METADATA_JSON, Opened::Bytes(metadata_json.as_bytes())),
        (CONFIG_JSON, Opened::Bytes(config_json.as_bytes())),
    ];
    for (a, name) in assets.iter().zip(&names) {
        others.push((
            name,
            match a.data {
                AssetData::Bytes(b) => Opened::Bytes(b),
                AssetData::File(p) => {
                    let f = File::open(p).at(p)?;
                    let len = f.metadata().at(p)?.len();
                    Opened::File(f, len, p)
                }
            },
        ));
    }
    let (out, meta, so_far) = fsutil::build_then_replace(path, |tmp| {
        let (weights_member, so_far) = match weights {
            WeightsSource::Tree(tree) if for_artifact => write_weights_hashed(tmp, path, tree)?,
            _ => {
                let regions = write_weights(tmp, path, weights, weights_file)?;
                (
                    weights_member(&File::open(tmp).at(path)?, &regions, path)?,
                    None,
                )
            }
        };
        let out = finish_archive(tmp, path, weights_member, &mut others)?;
        // The identity after the last write; the rename that publishes the file keeps it.
        let meta = out.metadata().at(path)?;
        Ok((out, meta, so_far))
    })?;
    if let Some(so_far) = so_far {
        crate::store::manifest::remember_written_partly(path, out, &meta, so_far);
    }
    Ok(())
}

enum Opened<'a> {
    Bytes(&'a [u8]),
    File(File, u64, &'a Path),
}

/// Create `tmp` with the weights (HDF5) from [`WEIGHTS_DATA_START`] on; a tree is written there
/// by libhdf5 directly, in its one pass over the values, which also gives the CRC-32s of the
/// regions written from large values.
fn write_weights(
    tmp: &Path,
    path: &Path,
    weights: WeightsSource<'_>,
    file: Option<(File, &Path)>,
) -> Result<Vec<h5::RawRegion>> {
    let progress = Progress::current();
    match (weights, file) {
        (WeightsSource::Tree(tree), _) => {
            h5::write_with_userblock(tmp, path, tree, WEIGHTS_DATA_START)
        }
        (WeightsSource::Bytes(b), _) => {
            progress.add_total(b.len() as u64);
            let out = File::create_new(tmp).at(path)?;
            progress
                .write_all_at(&out, b, WEIGHTS_DATA_START)
                .at(path)?;
            Ok(Vec::new())
        }
        (WeightsSource::File(_), Some((f, p))) => {
            let len = f.metadata().at(p)?.len();
            progress.add_total(len);
            let mut out = File::create_new(tmp).at(path)?;
            out.seek(SeekFrom::Start(WEIGHTS_DATA_START)).at(path)?;
            let mut counted = CountingWriter {
                inner: io::BufWriter::with_capacity(1 << 20, &mut out),
                progress: &progress,
            };
            copy_exact(&f, len, &mut counted, p)?;
            counted.flush().at(path)?;
            Ok(Vec::new())
        }
        (WeightsSource::File(p), None) => Err(Error::invalid(format!(
            "weights file {} was not opened",
            p.display()
        ))),
    }
}

/// CRC-32 of the bytes `start..end` of `file`, of which the `known` regions (in file order,
/// inside the range, not overlapping) have theirs computed already; the gaps are read back.
fn member_crc32(file: &File, start: u64, end: u64, known: &[h5::RawRegion]) -> io::Result<u32> {
    let gap =
        |from: u64, to: u64| file_bytes::file_crc32_state(file, from, to - from, &Progress::off());
    let mut crc = crc32fast::Hasher::new();
    let mut at = start;
    for region in known {
        let region_end = region.offset.checked_add(region.len).filter(|&e| e <= end);
        let Some(region_end) = region_end.filter(|_| region.offset >= at) else {
            // Not what libhdf5 allocates: read everything back rather than trust it.
            return file_bytes::file_crc32(file, start, end - start, &Progress::off());
        };
        crc.combine(&gap(at, region.offset)?);
        crc.combine(&region.crc);
        at = region_end;
    }
    crc.combine(&gap(at, end)?);
    Ok(crc.finalize())
}

/// Create `tmp` with the weights tree written from [`WEIGHTS_DATA_START`] on, hashing the file
/// (the weights' zip header in front, made before the values are written) while the values are
/// written; returns the weights member and the digest so far (`None` if it could not follow).
fn write_weights_hashed(
    tmp: &Path,
    path: &Path,
    tree: &H5Group<'_>,
) -> Result<(Written, Option<crate::store::manifest::DigestSoFar>)> {
    let mut member = None;
    let digest = h5::write_with_userblock_hashed(
        tmp,
        path,
        tree,
        WEIGHTS_DATA_START,
        &mut |file, regions| {
            let m = weights_member(file, regions, path)?;
            let header = m.local_header(Some(WEIGHTS_DATA_START));
            member = Some(m);
            Ok(header)
        },
    )?;
    let member = member.ok_or_else(|| Error::invalid("the weights' zip header was not made"))?;
    Ok((member, digest))
}

/// The weights member of the archive being written in `file` (weights from
/// [`WEIGHTS_DATA_START`] to its end): its size and CRC-32, for which `known` are regions
/// whose CRC-32 is known (in file order), so only the rest is read back.
fn weights_member(file: &File, known: &[h5::RawRegion], path: &Path) -> Result<Written> {
    let end = file.metadata().at(path)?.len();
    let size = end.checked_sub(WEIGHTS_DATA_START).ok_or_else(|| {
        Error::io(
            path,
            io::Error::other("the weights file is shorter than its zip header"),
        )
    })?;
    let crc = member_crc32(file, WEIGHTS_DATA_START, end, known).at(path)?;
    Ok(Written {
        name: WEIGHTS_H5.to_string(),
        crc,
        size,
        offset: 0,
    })
}

/// Turn `tmp` (weights from [`WEIGHTS_DATA_START`] to its end) into the archive: the weights'
/// zip header in front, the other members, then the central directory. Returns the file,
/// open for reading.
fn finish_archive(
    tmp: &Path,
    path: &Path,
    weights: Written,
    others: &mut [(&str, Opened<'_>)],
) -> Result<File> {
    let end = WEIGHTS_DATA_START + weights.size;
    let mut out = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(tmp)
        .at(path)?;
    out.write_all_at(&weights.local_header(Some(WEIGHTS_DATA_START)), 0)
        .at(path)?;
    out.seek(SeekFrom::Start(end)).at(path)?;
    let mut members = vec![weights];
    let progress = Progress::current();
    progress.add_total(
        others
            .iter()
            .map(|(_, src)| match src {
                Opened::Bytes(b) => b.len() as u64,
                Opened::File(_, len, _) => *len,
            })
            .sum(),
    );
    let mut w = io::BufWriter::with_capacity(1 << 20, out);
    let mut at = end;
    for (name, src) in others.iter_mut() {
        // Headers come first and hold the CRC: a file member is read twice (assets are small).
        let (crc, size) = match src {
            Opened::Bytes(b) => (crc32fast::hash(b), b.len() as u64),
            Opened::File(f, len, p) => {
                let mut h = crc32fast::Hasher::new();
                copy_exact(f, *len, &mut HashWriter(&mut h), p)?;
                f.seek(SeekFrom::Start(0)).at(*p)?;
                (h.finalize(), *len)
            }
        };
        let member = Written {
            name: name.to_string(),
            crc,
            size,
            offset: at,
        };
        let header = member.local_header(None);
        w.write_all(&header).at(path)?;
        let mut counted = CountingWriter {
            inner: &mut w,
            progress: &progress,
        };
        match src {
            Opened::Bytes(b) => counted.write_all(b).at(path)?,
            Opened::File(f, len, p) => copy_exact(f, *len, &mut counted, p)?,
        }
        at += header.len() as u64 + size;
        members.push(member);
    }
    w.write_all(&central_directory(&members, at)).at(path)?;
    w.into_inner().map_err(|e| Error::io(path, e.into_error()))
}

/// Copy exactly `len` bytes of `f` (the file at `p`) into `out`; a file that has shrunk since it
/// was measured is an error.
fn copy_exact(f: &File, len: u64, out: &mut impl Write, p: &Path) -> Result<()> {
    if io::copy(&mut f.take(len), out).at(p)? != len {
        return Err(Error::io(
            p,
            io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while copying"),
        ));
    }
    Ok(())
}

/// A writer that only feeds a CRC.
struct HashWriter<'h>(&'h mut crc32fast::Hasher);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Bytes before `model.weights.h5`'s data: its zip header, padded. libhdf5 looks for a
/// superblock at 0, 512, 1024, …, so the HDF5 file starting here is also what libhdf5 sees when
/// it opens the archive itself (a "user block"), and the weights are written once, in place.
const WEIGHTS_DATA_START: u64 = 512;
/// Zip's "alignment" extra field (as Android's zipalign writes it), which pads the header.
const ALIGNMENT_EXTRA_ID: u16 = 0xD935;
/// Sizes and offsets from here on need ZIP64 records.
const ZIP32_LIMIT: u64 = 0xFFFF_FFFF;
/// MS-DOS date of 1980-01-01 (time 00:00:00), the timestamp of every member.
const DOS_DATE: u16 = (1 << 5) | 1;
/// Unix, zip 2.0 (4.5 with ZIP64), as Python's zipfile writes.
const MADE_BY_UNIX: u16 = 3 << 8;
/// Python's zipfile gives members mode 0o600 and no file-type bits.
const EXTERNAL_ATTRS: u32 = 0o600 << 16;

/// One member as the central directory records it.
struct Written {
    name: String,
    crc: u32,
    size: u64,
    offset: u64,
}

impl Written {
    fn zip64(&self) -> bool {
        self.size >= ZIP32_LIMIT || self.offset >= ZIP32_LIMIT
    }

    fn version(&self) -> u16 {
        if self.zip64() {
            45
        } else {
            20
        }
    }

    /// Bit 11: the name is UTF-8 (set, as by zipfile, only when it is not ASCII).
    fn flags(&self) -> u16 {
        if self.name.is_ascii() {
            0
        } else {
            1 << 11
        }
    }

    /// The local file header, padded with an alignment extra field to `pad_to` bytes if given.
    fn local_header(&self, pad_to: Option<u64>) -> Vec<u8> {
        let big = self.size >= ZIP32_LIMIT;
        let mut extra = Vec::new();
        if big {
            put16(&mut extra, 1);
            put16(&mut extra, 16);
            put64(&mut extra, self.size);
            put64(&mut extra, self.size);
        }
        let fixed = 30 + self.name.len() + extra.len();
        if let Some(total) = pad_to {
            // id, size, then the alignment (u16) and zeros.
            let pad = total as usize - fixed - 4;
            put16(&mut extra, ALIGNMENT_EXTRA_ID);
            put16(&mut extra, pad as u16);
            put16(&mut extra, total as u16);
            extra.resize(extra.len() + pad - 2, 0);
        }
        let size32 = if big {
            ZIP32_LIMIT as u32
        } else {
            self.size as u32
        };
        let mut h = Vec::with_capacity(30 + self.name.len() + extra.len());
        put32(&mut h, 0x0403_4b50);
        put16(&mut h, self.version());
        put16(&mut h, self.flags());
        put16(&mut h, 0); // stored
        put16(&mut h, 0);
        put16(&mut h, DOS_DATE);
        put32(&mut h, self.crc);
        put32(&mut h, size32);
        put32(&mut h, size32);
        put16(&mut h, self.name.len() as u16);
        put16(&mut h, extra.len() as u16);
        h.extend_from_slice(self.name.as_bytes());
        h.extend_from_slice(&extra);
        h
    }

    fn central_header(&self, out: &mut Vec<u8>) {
        let mut extra = Vec::new();
        if self.size >= ZIP32_LIMIT {
            put64(&mut extra, self.size);
            put64(&mut extra, self.size);
        }
        if self.offset >= ZIP32_LIMIT {
            put64(&mut extra, self.offset);
        }
        let narrow = |v: u64| {
            if v >= ZIP32_LIMIT {
                ZIP32_LIMIT as u32
            } else {
                v as u32
            }
        };
        put32(out, 0x0201_4b50);
        put16(out, MADE_BY_UNIX | self.version());
        put16(out, self.version());
        put16(out, self.flags());
        put16(out, 0);
        put16(out, 0);
        put16(out, DOS_DATE);
        put32(out, self.crc);
        put32(out, narrow(self.size));
        put32(out, narrow(self.size));
        put16(out, self.name.len() as u16);
        put16(
            out,
            if extra.is_empty() {
                0
            } else {
                extra.len() as u16 + 4
            },
        );
        put16(out, 0); // comment
        put16(out, 0); // disk
        put16(out, 0); // internal attributes
        put32(out, EXTERNAL_ATTRS);
        put32(out, narrow(self.offset));
        out.extend_from_slice(self.name.as_bytes());
        if !extra.is_empty() {
            put16(out, 1);
            put16(out, extra.len() as u16);
            out.extend_from_slice(&extra);
        }
    }
}

fn put16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn put32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn put64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}

/// The central directory and its end records (ZIP64 ones when needed), for members written
/// before `cd_offset`.
fn central_directory(members: &[Written], cd_offset: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for m in members {
        m.central_header(&mut out);
    }
    let cd_size = out.len() as u64;
    let n = members.len() as u64;
    let zip64 = cd_offset >= ZIP32_LIMIT || n >= 0xFFFF || members.iter().any(Written::zip64);
    if zip64 {
        let record_at = cd_offset + cd_size;
        put32(&mut out, 0x0606_4b50);
        put64(&mut out, 44);
        put16(&mut out, MADE_BY_UNIX | 45);
        put16(&mut out, 45);
        put32(&mut out, 0);
        put32(&mut out, 0);
        put64(&mut out, n);
        put64(&mut out, n);
        put64(&mut out, cd_size);
        put64(&mut out, cd_offset);
        put32(&mut out, 0x0706_4b50);
        put32(&mut out, 0);
        put64(&mut out, record_at);
        put32(&mut out, 1);
    }
    put32(&mut out, 0x0605_4b50);
    put16(&mut out, 0);
    put16(&mut out, 0);
    put16(&mut out, n.min(0xFFFF) as u16);
    put16(&mut out, n.min(0xFFFF) as u16);
    put32(&mut out, cd_size.min(ZIP32_LIMIT) as u32);
    put32(&mut out, cd_offset.min(ZIP32_LIMIT) as u32);
    put16(&mut out, 0);
    out
}

/// Apply `f` to every dataset's `storage.raw_offset` in `group`.
fn map_raw_offsets(group: &mut H5Group<'_>, f: &impl Fn(u64) -> Option<u64>) {
    for (_, node) in &mut group.children {
        match node {
            H5Node::Group(g) => map_raw_offsets(g, f),
            H5Node::Dataset(d) => {
                if let Some(storage) = d.storage.as_mut() {
                    storage.raw_offset = storage.raw_offset.and_then(f);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_crc_joins_known_regions_and_reads_the_gaps() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        let want = crc32fast::hash(&bytes[512..]);
        let region = |from: usize, to: usize| h5::RawRegion {
            offset: from as u64,
            len: (to - from) as u64,
            crc: {
                let mut h = crc32fast::Hasher::new();
                h.update(&bytes[from..to]);
                h
            },
        };
        let end = bytes.len() as u64;
        for known in [
            vec![],
            vec![region(512, 1000)],
            vec![
                region(600, 700),
                region(700, 50_000),
                region(60_000, 100_000),
            ],
            // Overlapping or out of range: not trusted, everything is read back.
            vec![region(600, 700), region(650, 800)],
            vec![region(100, 700)],
        ] {
            assert_eq!(member_crc32(&file, 512, end, &known).unwrap(), want);
        }
        let mut lying = region(600, 700);
        lying.len = end; // reaches past the end
        assert_eq!(member_crc32(&file, 512, end, &[lying]).unwrap(), want);
    }

    #[test]
    fn sniff_bytes_tells_zip_hdf5_and_other_apart() {
        assert_eq!(sniff_bytes(b"PK\x03\x04rest"), FileKind::Zip);
        assert_eq!(sniff_bytes(b"PK\x05\x06"), FileKind::Zip);
        let mut h5 = HDF5_SIGNATURE.to_vec();
        h5.resize(64, 0);
        assert_eq!(sniff_bytes(&h5), FileKind::Hdf5);
        assert_eq!(sniff_bytes(b"{\"class_name\": 1}"), FileKind::Other);
        assert_eq!(sniff_bytes(b""), FileKind::Other);
    }

    #[test]
    fn member_names() {
        for ok in ["config.json", "assets/a/b.txt", "assets/", "a.b/c..d"] {
            assert!(check_member_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "assets/../../x",
            "a\\b",
            "C:/x",
            "a//b",
            "./a",
            "a/./b",
            "a\0b",
        ] {
            assert!(check_member_name(bad).is_err(), "{bad:?}");
        }
    }

    /// Weights of 4 GiB and more need ZIP64 sizes, and the members after them ZIP64 offsets;
    /// a sparse file stands in for the weights.
    #[test]
    fn zip64_archives_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (tmp, path) = (dir.path().join("tmp"), dir.path().join("big.keras"));
        let size = (4u64 << 30) + 3;
        let f = File::create_new(&tmp).unwrap();
        f.set_len(WEIGHTS_DATA_START + size).unwrap();
        f.write_all_at(b"tail", WEIGHTS_DATA_START + size - 4)
            .unwrap();
        drop(f);
        let mut others = vec![
            (METADATA_JSON, Opened::Bytes(b"{}")),
            (CONFIG_JSON, Opened::Bytes(b"{\"class_name\": \"X\"}")),
        ];
        let weights = weights_member(&File::open(&tmp).unwrap(), &[], &path).unwrap();
        finish_archive(&tmp, &path, weights, &mut others).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        let a = read_archive(&path).unwrap();
        let names: Vec<_> = a
            .members
            .iter()
            .map(|m| (m.name.as_str(), m.size))
            .collect();
        assert_eq!(
            names,
            [(WEIGHTS_H5, size), (METADATA_JSON, 2), (CONFIG_JSON, 19)]
        );
        assert_eq!(a.config_json, "{\"class_name\": \"X\"}");
        assert_eq!(
            a.member(WEIGHTS_H5).unwrap().data_start,
            Some(WEIGHTS_DATA_START)
        );
    }
}
