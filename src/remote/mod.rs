//! Object storage (`s3://`, `gs://`, `az://`) through the `object_store` crate.
//!
//! [`Remote`] is one bucket (or container) plus a key prefix, opened from a URL with credentials
//! and endpoints taken from the standard environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`) and an
//! optional explicit option list. Its methods are blocking: they run on one shared tokio runtime,
//! so callers (the bindings release the GIL first) never see async code.
//!
//! Secrets never appear in errors: messages name the URL and what failed, and `object_store`'s
//! own errors carry request URLs and status codes, not credentials.
//!
//! [`versions`] builds the versioned artifact store on top (claims by create-only put, commit by
//! the final `metadata.json`).

pub mod bundle;
pub mod versions;

use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::stream::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::path::Path as Key;
use object_store::{
    ClientOptions, GetResult, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    PutPayload, RetryConfig, WriteMultipart,
};
use sha2::{Digest, Sha256};

use crate::error::{Error, IoContext, Result};
use crate::store::FileEntry;

/// Files larger than this are uploaded in parts.
pub const MULTIPART_THRESHOLD: u64 = 64 << 20;
/// Size of one uploaded part.
const PART_SIZE: usize = 16 << 20;
/// Parts (of one file) or files in flight at once.
const CONCURRENCY: usize = 8;

/// The URL schemes kerasafe treats as object storage.
pub const SCHEMES: [&str; 5] = ["s3://", "s3a://", "gs://", "az://", "abfs://"];

/// Whether `path` names object storage rather than a local path.
pub fn is_remote(path: &str) -> bool {
    SCHEMES.iter().any(|s| path.starts_with(s))
}

fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .thread_name("kerasafe-io")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| Error::invalid(format!("cannot start the object-storage runtime: {e}")))
}

fn block_on<F: std::future::Future>(f: F) -> Result<F::Output> {
    Ok(runtime()?.block_on(f))
}

/// An `object_store` error on `url` as a core error: not found, permission and exists keep
/// their meaning (and Python class); everything else is a storage error.
pub(crate) fn store_error(url: &str, e: object_store::Error) -> Error {
    use object_store::Error as E;
    let kind = match &e {
        E::NotFound { .. } => ErrorKind::NotFound,
        E::AlreadyExists { .. } | E::Precondition { .. } => ErrorKind::AlreadyExists,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => ErrorKind::PermissionDenied,
        _ => ErrorKind::Other,
    };
    Error::io(url, io::Error::new(kind, e.to_string()))
}

/// One bucket/container and a key prefix in it.
#[derive(Debug, Clone)]
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    /// `s3://bucket` (no trailing slash): prefixes keys in URLs shown to users.
    origin: String,
    /// The key prefix the URL named (may be empty).
    base: Key,
}

/// Split `scheme://bucket/key/path` into (`scheme://bucket`, bucket, key).
fn split_url(url: &str) -> Result<(String, String, String)> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| Error::invalid(format!("{url}: not an object-storage URL")))?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(Error::invalid(format!("{url}: the URL names no bucket")));
    }
    Ok((
        format!("{scheme}://{bucket}"),
        bucket.to_string(),
        key.trim_matches('/').to_string(),
    ))
}

fn parse_key(url: &str, key: &str) -> Result<Key> {
    Key::parse(key).map_err(|e| Error::invalid(format!("{url}: invalid object key: {e}")))
}

fn unknown_option(url: &str, key: &str) -> Error {
    // Only the key is named: values may be secrets.
    Error::invalid(format!("{url}: unknown storage option {key:?}"))
}

fn client_defaults() -> ClientOptions {
    ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(10))
        .with_timeout(Duration::from_secs(600))
}

fn retry_defaults() -> RetryConfig {
    // A server that is down should fail in seconds, not after object_store's default 3 minutes.
    RetryConfig {
        max_retries: 3,
        retry_timeout: Duration::from_secs(30),
        ..RetryConfig::default()
    }
}

fn is_set(v: Option<String>) -> bool {
    v.is_some_and(|s| !s.is_empty())
}

fn open_s3(url: &str, bucket: &str, options: &[(String, String)]) -> Result<Arc<dyn ObjectStore>> {
    let b = AmazonS3Builder::from_env()
        .with_client_options(client_defaults())
        .with_retry(retry_defaults())
        .with_bucket_name(bucket);
    let mut b = configure(url, b, options, |b, k: AmazonS3ConfigKey, v| {
        b.with_config(k, v)
    })?;
    let endpoint = b.get_config_value(&AmazonS3ConfigKey::Endpoint);
    if endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"))
    {
        b = b.with_allow_http(true);
    }
    let skip = b
        .get_config_value(&AmazonS3ConfigKey::SkipSignature)
        .is_some_and(|v| v == "true");
    let has_keys = is_set(b.get_config_value(&AmazonS3ConfigKey::AccessKeyId))
        && is_set(b.get_config_value(&AmazonS3ConfigKey::SecretAccessKey));
    let env_provider = [
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some());
    let imds = std::env::var("KERASAFE_S3_INSTANCE_CREDENTIALS").is_ok_and(|v| v == "1");
    if !(skip || has_keys || env_provider || imds) {
        return Err(Error::io(
            url,
            io::Error::new(
                ErrorKind::PermissionDenied,
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and \
                 AWS_ENDPOINT_URL for MinIO/Ceph/moto), pass storage_options={'aws_access_key_id': \
                 …, 'aws_secret_access_key': …}, use {'aws_skip_signature': 'true'} for a public \
                 bucket, or KERASAFE_S3_INSTANCE_CREDENTIALS=1 on EC2",
            ),
        ));
    }
    built(url, b.build())
}

/// Apply `options` (parsed as `K`) through `with_config`, then build; errors name the URL and
/// the option key, never a value.
fn configure<B, K: std::str::FromStr>(
    url: &str,
    mut builder: B,
    options: &[(String, String)],
    with_config: impl Fn(B, K, &str) -> B,
) -> Result<B> {
    for (k, v) in options {
        let key: K = k.parse().map_err(|_| unknown_option(url, k))?;
        builder = with_config(builder, key, v);
    }
    Ok(builder)
}

fn built<S: ObjectStore>(url: &str, r: object_store::Result<S>) -> Result<Arc<dyn ObjectStore>> {
    r.map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        .map_err(|e| store_error(url, e))
}

fn open_gcs(url: &str, bucket: &str, options: &[(String, String)]) -> Result<Arc<dyn ObjectStore>> {
    let b = GoogleCloudStorageBuilder::from_env()
        .with_client_options(client_defaults())
        .with_retry(retry_defaults())
        .with_bucket_name(bucket);
    let b = configure(url, b, options, |b, k: GoogleConfigKey, v| {
        b.with_config(k, v)
    })?;
    built(url, b.build())
}

fn open_azure(
    url: &str,
    container: &str,
    options: &[(String, String)],
) -> Result<Arc<dyn ObjectStore>> {
    let b = MicrosoftAzureBuilder::from_env()
        .with_client_options(client_defaults())
        .with_retry(retry_defaults())
        .with_container_name(container);
    let b = configure(url, b, options, |b, k: AzureConfigKey, v| {
        b.with_config(k, v)
    })?;
    built(url, b.build())
}

/// reqwest is built without a crypto provider of its own (see Cargo.toml): make ring the
/// process default before the first HTTPS client exists. If the host program installed one
/// already, that one stays.
fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Remote {
    /// Open the bucket a URL names (`s3://bucket/prefix`, `gs://…`, `az://container/…`).
    /// `options` are `object_store` configuration keys (`aws_endpoint`, `aws_region`, …) that
    /// override the environment.
    pub fn open(url: &str, options: &[(String, String)]) -> Result<Remote> {
        install_tls_provider();
        let (origin, bucket, key) = split_url(url)?;
        let scheme = &origin[..origin.find("://").unwrap_or(0) + 3];
        let store = match scheme {
            "s3://" | "s3a://" => open_s3(url, &bucket, options)?,
            "gs://" => open_gcs(url, &bucket, options)?,
            "az://" | "abfs://" => open_azure(url, &bucket, options)?,
            _ => {
                return Err(Error::invalid(format!(
                    "{url}: unsupported scheme {scheme:?} (use s3://, gs:// or az://)"
                )))
            }
        };
        Ok(Remote {
            store,
            base: parse_key(url, &key)?,
            origin,
        })
    }

    /// A remote over any `object_store` implementation (tests use the in-memory one).
    pub fn with_store(store: Arc<dyn ObjectStore>, origin: &str, prefix: &str) -> Result<Remote> {
        Ok(Remote {
            store,
            origin: origin.trim_end_matches('/').to_string(),
            base: parse_key(origin, prefix.trim_matches('/'))?,
        })
    }

    /// The URL this remote was opened at.
    pub fn url(&self) -> String {
        self.url_of(&self.base)
    }

    /// The same bucket with `rel` (`/`-separated) appended to the prefix.
    pub fn join(&self, rel: &str) -> Result<Remote> {
        Ok(Remote {
            store: self.store.clone(),
            origin: self.origin.clone(),
            base: self.key(rel)?,
        })
    }

    /// The key `base/rel`.
    pub fn key(&self, rel: &str) -> Result<Key> {
        let rel = rel.trim_matches('/');
        if rel.is_empty() {
            return Ok(self.base.clone());
        }
        let joined = if self.base.as_ref().is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.base)
        };
        parse_key(&self.url(), &joined)
    }

    /// `origin/key`, the way users write it.
    pub fn url_of(&self, key: &Key) -> String {
        if key.as_ref().is_empty() {
            self.origin.clone()
        } else {
            format!("{}/{}", self.origin, key)
        }
    }

    /// The part of `key` after this remote's prefix.
    fn relative<'k>(&self, key: &'k Key) -> &'k str {
        let k = key.as_ref();
        if self.base.as_ref().is_empty() {
            return k;
        }
        k.strip_prefix(self.base.as_ref())
            .map_or(k, |r| r.trim_start_matches('/'))
    }

    /// Every object under `rel` (recursively), as (path relative to this remote, size).
    pub fn list(&self, rel: &str) -> Result<Vec<(String, u64)>> {
        let prefix = self.key(rel)?;
        let url = self.url_of(&prefix);
        let metas: Vec<ObjectMeta> = block_on(
            self.store
                .list(if prefix.as_ref().is_empty() {
                    None
                } else {
                    Some(&prefix)
                })
                .try_collect(),
        )?
        .map_err(|e| store_error(&url, e))?;
        let mut out: Vec<(String, u64)> = metas
            .iter()
            .map(|m| (self.relative(&m.location).to_string(), m.size))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Size of the object at `rel`, `None` when it does not exist.
    pub fn size_of(&self, rel: &str) -> Result<Option<u64>> {
        let key = self.key(rel)?;
        match block_on(self.store.head(&key))? {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_error(&self.url_of(&key), e)),
        }
    }

    /// The whole object at `rel`; larger than `limit` bytes is a format error.
    pub fn get_bytes(&self, rel: &str, limit: u64) -> Result<Vec<u8>> {
        let key = self.key(rel)?;
        block_on(self.read_all(&key, &self.url_of(&key), limit))?
    }

    /// The object this remote's URL names, whole, in memory (see [`fetch`]).
    pub fn fetch(&self) -> Result<Vec<u8>> {
        let url = self.url();
        if self.base.as_ref().is_empty() {
            return Err(Error::io(
                &url,
                io::Error::new(ErrorKind::NotFound, "the URL names a bucket, not an object"),
            ));
        }
        block_on(self.read_all(&self.base, &url, u64::MAX))?
    }

    /// GET the object at `key`; errors name `url`.
    async fn get(&self, key: &Key, url: &str) -> Result<GetResult> {
        self.store.get(key).await.map_err(|e| store_error(url, e))
    }

    /// The whole object at `key` in memory. Larger than `limit` bytes is a format error; larger
    /// than the allocator will reserve (asked before the first byte arrives) is a storage error
    /// naming `url`, not an abort.
    async fn read_all(&self, key: &Key, url: &str, limit: u64) -> Result<Vec<u8>> {
        let got = self.get(key, url).await?;
        let size = got.meta.size;
        if size > limit {
            return Err(Error::format_in(
                url,
                format!("{size} bytes, more than the {limit} allowed"),
            ));
        }
        let mut out = Vec::new();
        reserve(&mut out, size, url)?;
        each_chunk(got, url, |chunk| {
            if (out.len() + chunk.len()) as u64 > limit {
                return Err(Error::format_in(url, "object grew beyond the size limit"));
            }
            reserve(&mut out, chunk.len() as u64, url)?;
            out.extend_from_slice(chunk);
            Ok(true)
        })
        .await?;
        Ok(out)
    }

    /// Put `bytes` at `rel` unless an object exists there (`If-None-Match: *` on S3). Returns
    /// `false` when one existed.
    pub fn put_new(&self, rel: &str, bytes: Vec<u8>) -> Result<bool> {
        let key = self.key(rel)?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match block_on(self.store.put_opts(&key, PutPayload::from(bytes), opts))? {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(store_error(&self.url_of(&key), e)),
        }
    }

    /// Put `bytes` at `rel`, replacing any object there.
    pub fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        let key = self.key(rel)?;
        block_on(self.store.put(&key, PutPayload::from(bytes)))?
            .map(|_| ())
            .map_err(|e| store_error(&self.url_of(&key), e))
    }

    /// Delete the object at `rel`; a missing object is not an error.
    pub fn delete(&self, rel: &str) -> Result<()> {
        let key = self.key(rel)?;
        match block_on(self.store.delete(&key))? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(&self.url_of(&key), e)),
        }
    }

    /// Upload local files to `rel` paths, several at once; large files in parallel parts.
    pub fn upload_files(&self, files: &[(PathBuf, String)]) -> Result<()> {
        block_on(async {
            futures::stream::iter(files.iter().map(|(local, rel)| self.upload_one(local, rel)))
                .buffer_unordered(CONCURRENCY)
                .try_collect::<Vec<()>>()
                .await
                .map(|_| ())
        })?
    }

    async fn upload_one(&self, local: &Path, rel: &str) -> Result<()> {
        let key = self.key(rel)?;
        let url = self.url_of(&key);
        let size = std::fs::metadata(local).at(local)?.len();
        if size <= MULTIPART_THRESHOLD {
            let bytes = std::fs::read(local).at(local)?;
            self.store
                .put(&key, PutPayload::from(bytes))
                .await
                .map_err(|e| store_error(&url, e))?;
            return Ok(());
        }
        let upload = self
            .store
            .put_multipart(&key)
            .await
            .map_err(|e| store_error(&url, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut file = File::open(local).at(local)?;
        let mut buf = vec![0u8; PART_SIZE];
        loop {
            let n = read_full(&mut file, &mut buf).at(local)?;
            if n == 0 {
                break;
            }
            writer
                .wait_for_capacity(CONCURRENCY)
                .await
                .map_err(|e| store_error(&url, e))?;
            writer.write(&buf[..n]);
        }
        writer.finish().await.map_err(|e| store_error(&url, e))?;
        Ok(())
    }

    /// Download objects to local files, several at once, creating parent directories. Where an
    /// expected size and SHA-256 are given, they are checked while the bytes stream in; a
    /// mismatch is [`Error::Checksum`] naming the object, and the partial file is removed.
    pub fn download_files(&self, files: &[(String, PathBuf, Option<FileEntry>)]) -> Result<()> {
        block_on(async {
            futures::stream::iter(
                files
                    .iter()
                    .map(|(rel, local, want)| self.download_one(rel, local, want.as_ref())),
            )
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
        })?
    }

    async fn download_one(&self, rel: &str, local: &Path, want: Option<&FileEntry>) -> Result<()> {
        let key = self.key(rel)?;
        let url = self.url_of(&key);
        if let Some(parent) = local.parent() {
            std::fs::create_dir_all(parent).at(parent)?;
        }
        let result = async {
            let mut file = File::create(local).at(local)?;
            self.get_checked(&key, &url, want, |chunk| file.write_all(chunk).at(local))
                .await
        }
        .await;
        if result.is_err() {
            let _ = std::fs::remove_file(local);
        }
        result
    }

    /// The object at `rel`, whole in memory, checked against its manifest entry `want` (size
    /// and SHA-256) before it is returned.
    pub fn fetch_checked(&self, rel: &str, want: &FileEntry) -> Result<Vec<u8>> {
        let key = self.key(rel)?;
        let url = self.url_of(&key);
        let mut out = Vec::new();
        reserve(&mut out, want.size, &url)?;
        block_on(self.get_checked(&key, &url, Some(want), |chunk| {
            out.extend_from_slice(chunk);
            Ok(())
        }))??;
        Ok(out)
    }

    /// Stream the object at `key` into `sink`, hashing it on the way, and check it against
    /// `want`: a download stops as soon as it runs past the manifest's size. Errors name `url`.
    async fn get_checked(
        &self,
        key: &Key,
        url: &str,
        want: Option<&FileEntry>,
        mut sink: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let got = self.get(key, url).await?;
        let mut hasher = Sha256::new();
        let mut seen = 0u64;
        let size = each_chunk(got, url, |chunk| {
            seen += chunk.len() as u64;
            if want.is_some_and(|w| seen > w.size) {
                return Ok(false); // bigger than the manifest says: report below, stop downloading
            }
            hasher.update(chunk);
            sink(chunk)?;
            Ok(true)
        })
        .await?;
        match want {
            Some(w) => check_against(url, size, &hasher.finalize(), w),
            None => Ok(()),
        }
    }

    /// Size and SHA-256 of the object at `rel`, streamed.
    pub fn hash(&self, rel: &str) -> Result<FileEntry> {
        let key = self.key(rel)?;
        let url = self.url_of(&key);
        block_on(async {
            let got = self.get(&key, &url).await?;
            let mut hasher = Sha256::new();
            let size = each_chunk(got, &url, |chunk| {
                hasher.update(chunk);
                Ok(true)
            })
            .await?;
            Ok(FileEntry {
                size,
                sha256: crate::store::manifest::hex(&hasher.finalize()),
            })
        })?
    }
}

/// Hand a GET's bytes to `sink` chunk by chunk, as they arrive, until the end or until `sink`
/// returns `false`; returns the bytes received (the refused chunk included). Errors name `url`.
async fn each_chunk(
    got: GetResult,
    url: &str,
    mut sink: impl FnMut(&[u8]) -> Result<bool>,
) -> Result<u64> {
    let mut size = 0u64;
    let mut stream = got.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| store_error(url, e))?;
        size += chunk.len() as u64;
        if !sink(&chunk)? {
            break;
        }
    }
    Ok(size)
}

/// Room for `more` bytes in `out`, or a storage error naming `url`: an object larger than the
/// memory the allocator will give (or than the address space) is refused instead of aborting.
fn reserve(out: &mut Vec<u8>, more: u64, url: &str) -> Result<()> {
    usize::try_from(more)
        .ok()
        .and_then(|n| out.try_reserve_exact(n).ok())
        .ok_or_else(|| {
            Error::io(
                url,
                io::Error::new(
                    ErrorKind::OutOfMemory,
                    format!(
                        "the object does not fit in memory ({more} bytes more wanted); \
                         download it to a file instead"
                    ),
                ),
            )
        })
}

/// Fill `buf` as far as the file allows; returns the bytes read (0 at the end).
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Every regular file under `dir` as (local path, `/`-separated relative path), sorted.
pub fn local_files(dir: &Path) -> Result<Vec<(PathBuf, String)>> {
    let tree = crate::store::manifest::walk(dir, true)?;
    let mut files: Vec<(PathBuf, String)> =
        tree.files.into_iter().map(|f| (f.path, f.rel)).collect();
    files.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(files)
}

/// Upload a local file to `url`, or a local directory's files under `url/`.
pub fn upload(local: &Path, url: &str, options: &[(String, String)]) -> Result<()> {
    let remote = Remote::open(url, options)?;
    let meta = std::fs::metadata(local).at(local)?;
    if meta.is_dir() {
        remote.upload_files(&local_files(local)?)
    } else {
        remote.upload_files(&[(local.to_path_buf(), String::new())])
    }
}

/// Whether an object exists at `url`, or any object under `url/`.
pub fn exists(url: &str, options: &[(String, String)]) -> Result<bool> {
    let remote = Remote::open(url, options)?;
    if !remote.base.as_ref().is_empty() && remote.size_of("")?.is_some() {
        return Ok(true);
    }
    Ok(!remote.list("")?.is_empty())
}

/// What [`download`] found at a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Downloaded {
    /// One object, written to the local path.
    File,
    /// Objects under `url/`, written under the local directory.
    Dir,
}

/// Download the object at `url` to the file `local`, or, when there is none, every object under
/// `url/` into the directory `local`. Nothing at either is a not-found error.
pub fn download(url: &str, local: &Path, options: &[(String, String)]) -> Result<Downloaded> {
    let remote = Remote::open(url, options)?;
    if !remote.base.as_ref().is_empty() && remote.size_of("")?.is_some() {
        remote.download_files(&[(String::new(), local.to_path_buf(), None)])?;
        return Ok(Downloaded::File);
    }
    let objects = remote.list("")?;
    if objects.is_empty() {
        return Err(Error::io(
            url,
            io::Error::new(ErrorKind::NotFound, "no object and no objects under it"),
        ));
    }
    let jobs = objects
        .into_iter()
        .map(|(rel, _)| {
            let dest = safe_join(local, &rel).ok_or_else(|| {
                Error::format_in(
                    url,
                    format!("object key {rel:?} leaves the download directory"),
                )
            })?;
            Ok((rel, dest, None))
        })
        .collect::<Result<Vec<_>>>()?;
    remote.download_files(&jobs)?;
    Ok(Downloaded::Dir)
}

/// A checksum error naming `url` when `size` and `sha256` differ from the manifest's entry.
fn check_against(url: &str, size: u64, sha256: &[u8], want: &FileEntry) -> Result<()> {
    let sha = crate::store::manifest::hex(sha256);
    if size == want.size && sha == want.sha256 {
        return Ok(());
    }
    let detail = if size != want.size {
        format!("size differs from the manifest's {} bytes", want.size)
    } else {
        format!("sha256 {sha}, manifest says {}", want.sha256)
    };
    Err(Error::Checksum {
        at: crate::error::Location(Some(PathBuf::from(url))),
        what: format!("object {url}"),
        detail,
    })
}

/// The object at `url`, whole, in memory: one streamed GET, as [`download`] makes for a file,
/// with no file written. Missing is a not-found error (as from [`download`]); an object the
/// allocator cannot hold is refused before its bytes are fetched.
pub fn fetch(url: &str, options: &[(String, String)]) -> Result<Vec<u8>> {
    Remote::open(url, options)?.fetch()
}

/// Download every object whose key starts with `url`'s key followed by `.` (a checkpoint
/// prefix's `.index` and `.data-*` files) into `local_dir`; returns the file names.
pub fn download_siblings(
    url: &str,
    local_dir: &Path,
    options: &[(String, String)],
) -> Result<Vec<String>> {
    let (origin, _, key) = split_url(url)?;
    let (parent, stem) = key.rsplit_once('/').unwrap_or(("", key.as_str()));
    let parent_url = if parent.is_empty() {
        origin
    } else {
        format!("{origin}/{parent}")
    };
    let remote = Remote::open(&parent_url, options)?;
    let wanted = format!("{stem}.");
    let names: Vec<String> = remote
        .list("")?
        .into_iter()
        .map(|(rel, _)| rel)
        .filter(|rel| rel.starts_with(&wanted) && !rel.contains('/'))
        .collect();
    if names.is_empty() {
        return Err(Error::io(
            url,
            io::Error::new(ErrorKind::NotFound, "no checkpoint files with this prefix"),
        ));
    }
    let jobs: Vec<(String, PathBuf, Option<FileEntry>)> = names
        .iter()
        .map(|n| (n.clone(), local_dir.join(n), None))
        .collect();
    remote.download_files(&jobs)?;
    Ok(names)
}

/// `dir/rel` when `rel` is a plain relative path that stays inside `dir`.
pub(crate) fn safe_join(dir: &Path, rel: &str) -> Option<PathBuf> {
    crate::store::manifest::is_safe_key(rel).then(|| dir.join(rel))
}

#[cfg(test)]
mod tests;
