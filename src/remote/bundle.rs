//! TF checkpoints read straight from object storage: the index is fetched whole, each tensor
//! with one ranged GET into the caller's buffer (several in flight), its CRC checked as on disk.
//! No temporary file.

use std::path::Path;

use futures::stream::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;

use super::{block_on, split_url, store_error, Remote};
use crate::checkpoint::{self, decode_strings, parallel_crc32c, BundleReader, Entry};
use crate::error::{Error, Location, Result};
use crate::tensor::{num_elements, DType};

/// Indexes larger than this are refused (TF's are kilobytes to a few megabytes).
const MAX_INDEX_BYTES: u64 = 1 << 30;
/// Tensors fetched at once.
const IN_FLIGHT: usize = 8;

/// An opened checkpoint in object storage (`s3://bucket/dir/ckpt` for `ckpt.index` +
/// `ckpt.data-*`).
#[derive(Debug)]
pub struct RemoteBundle {
    dir: Remote,
    stem: String,
    url: String,
    reader: BundleReader,
}

impl RemoteBundle {
    /// Fetch and parse `url.index`.
    pub fn open(url: &str, options: &[(String, String)]) -> Result<RemoteBundle> {
        let (origin, _, key) = split_url(url)?;
        let (parent, stem) = key.rsplit_once('/').unwrap_or(("", key.as_str()));
        if stem.is_empty() {
            return Err(Error::invalid(format!(
                "{url}: the URL names no checkpoint prefix"
            )));
        }
        let dir = Remote::open(&format!("{origin}/{parent}"), options)?;
        let index_rel = format!("{stem}.index");
        let index = dir.get_bytes(&index_rel, MAX_INDEX_BYTES)?;
        let reader = BundleReader::from_index_bytes(Path::new(url), &index)
            .map_err(|e| e.in_file(format!("{url}.index")))?;
        Ok(RemoteBundle {
            dir,
            stem: stem.to_string(),
            url: url.to_string(),
            reader,
        })
    }

    /// Every entry, sorted by name.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.reader.entries()
    }

    /// Total size of the data objects (what no tensor can exceed).
    pub fn data_bytes(&self) -> Result<u64> {
        let n = self.reader.num_shards();
        let mut total = 0;
        for shard in 0..n {
            total += self.dir.size_of(&self.data_rel(shard))?.unwrap_or(0);
        }
        Ok(total)
    }

    fn data_rel(&self, shard: i32) -> String {
        let p = checkpoint::data_path(Path::new(&self.stem), shard, self.reader.num_shards());
        p.to_string_lossy().into_owned()
    }

    fn data_url(&self, shard: i32) -> String {
        self.dir
            .join(&self.data_rel(shard))
            .map(|r| r.url())
            .unwrap_or_else(|_| self.url.clone())
    }

    async fn fetch(&self, e: &Entry) -> Result<bytes::Bytes> {
        if e.sliced {
            return Err(Error::invalid(format!(
                "{}: tensor {:?} is partitioned into slices; download the checkpoint to read it",
                self.url, e.name
            )));
        }
        let rel = self.data_rel(e.shard_id);
        let key = self.dir.key(&rel)?;
        let url = self.data_url(e.shard_id);
        let end = e.offset.checked_add(e.size).ok_or_else(|| {
            Error::format_in(
                &url,
                format!("tensor {:?}: offset + size overflows", e.name),
            )
        })?;
        let got = self
            .dir
            .store
            .get_range(&key, e.offset..end)
            .await
            .map_err(|err| store_error(&url, err))?;
        if got.len() as u64 != e.size {
            return Err(Error::format_in(
                &url,
                format!(
                    "tensor {:?} claims bytes {}..{end} but the object returned {} (truncated?)",
                    e.name,
                    e.offset,
                    got.len()
                ),
            ));
        }
        Ok(got)
    }

    fn check_crc(&self, e: &Entry, actual: u32) -> Result<()> {
        if actual == e.crc32c {
            return Ok(());
        }
        Err(Error::Checksum {
            at: Location(Some(self.data_url(e.shard_id).into())),
            what: format!("tensor {:?}", e.name),
            detail: format!("stored crc32c {:#010x}, computed {actual:#010x}", e.crc32c),
        })
    }

    /// Fill each buffer with the fixed-size tensor named alongside it, verifying every CRC.
    pub fn read_many_into(&self, jobs: Vec<(&str, &mut [u8])>) -> Result<()> {
        let mut checked = Vec::with_capacity(jobs.len());
        for (name, out) in jobs {
            let e = self.reader.entry(name)?;
            e.check_buffer(out.len())?;
            checked.push((e, out));
        }
        // The caller's progress counter lives on this thread; the fetches run on the runtime's.
        let progress = crate::progress::Progress::current();
        progress.add_total(checked.iter().map(|(e, _)| e.size).sum());
        let progress = &progress;
        block_on(async {
            futures::stream::iter(checked.into_iter().map(|(e, out)| async move {
                let got = self.fetch(e).await?;
                out.copy_from_slice(&got);
                progress.advance(e.size);
                self.check_crc(e, parallel_crc32c(out))
            }))
            .buffer_unordered(IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
        })?
    }

    /// The elements of a string tensor.
    pub fn read_strings(&self, name: &str) -> Result<Vec<Vec<u8>>> {
        let e = self.reader.entry(name)?;
        if e.dtype != Some(DType::String) {
            return Err(Error::invalid(format!(
                "tensor {name:?} is {}, not string",
                e.dtype_name()
            )));
        }
        let raw = block_on(self.fetch(e))??;
        let (strings, crc) = decode_strings(&raw, num_elements(&e.shape)?).map_err(|err| {
            Error::format_in(
                self.data_url(e.shard_id),
                format!("string tensor {name:?}: {err}"),
            )
        })?;
        self.check_crc(e, crc)?;
        Ok(strings)
    }
}
