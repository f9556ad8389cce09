//! The one error type of the core. The Python bindings map every variant to a class in
//! `kerasafe.errors` with an exhaustive `match`, so a new variant is a compile error there.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Result alias used throughout the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where an error happened: a file (or directory) path, or nothing when the bytes came from memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location(pub Option<PathBuf>);

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(p) => write!(f, "{}: ", p.display()),
            None => Ok(()),
        }
    }
}

/// Every failure the core reports.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system error while touching a file.
    #[error("{path}: {source}", path = .path.display())]
    Io {
        /// The file or directory being read or written.
        path: PathBuf,
        /// The underlying error; its kind decides the Python class (FileNotFoundError, …).
        #[source]
        source: io::Error,
    },
    /// Bytes that do not follow the format: truncated, wrong magic, bad lengths, bad JSON…
    #[error("{at}{msg}")]
    Format {
        /// The file the bytes came from.
        at: Location,
        /// What is wrong, in words.
        msg: String,
    },
    /// Stored and computed checksums differ.
    #[error("{at}checksum mismatch for {what}: {detail}")]
    Checksum {
        /// The file holding the damaged bytes.
        at: Location,
        /// The tensor, block or file whose checksum failed.
        what: String,
        /// Stored vs computed values.
        detail: String,
    },
    /// A versioned artifact (or version) that does not exist.
    #[error("{at}{msg}")]
    ArtifactNotFound {
        /// The root, model or version path looked at.
        at: Location,
        /// What was looked for.
        msg: String,
    },
    /// A version that exists already; versions are never overwritten.
    #[error("{at}{msg}")]
    ArtifactExists {
        /// The version directory that exists.
        at: Location,
        /// Details.
        msg: String,
    },
    /// Custom objects a stored config needs and nobody provided; all of them, at once.
    #[error("{at}{msg}")]
    MissingCustomObject {
        /// The file whose config needs them.
        at: Location,
        /// The registered names that are missing.
        names: Vec<String>,
        /// The full message (names, where used, suggestions).
        msg: String,
    },
    /// A file that would run code or reach outside Keras when deserialized.
    #[error("{at}{msg}")]
    Unsafe {
        /// The offending file.
        at: Location,
        /// The offending config path and reason.
        msg: String,
    },
    /// Outputs of a reloaded model differ from the reference beyond tolerance.
    #[error("{msg}")]
    Validation {
        /// The comparison summary.
        msg: String,
    },
    /// A caller passed something the API cannot take (bad name, dtype, shape…).
    #[error("{msg}")]
    InvalidArgument {
        /// What is wrong.
        msg: String,
    },
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<Path>, source: io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// A format error not yet tied to a file (parsers of borrowed bytes use this).
    pub fn format(msg: impl Into<String>) -> Self {
        Error::Format {
            at: Location(None),
            msg: msg.into(),
        }
    }

    /// A format error in `path`.
    pub fn format_in(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::Format {
            at: Location(Some(path.as_ref().to_path_buf())),
            msg: msg.into(),
        }
    }

    /// A caller error.
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument { msg: msg.into() }
    }

    /// Tie an error raised while parsing bytes to the file they came from, unless it names one.
    #[must_use]
    pub fn in_file(mut self, path: impl AsRef<Path>) -> Self {
        let at = match &mut self {
            Error::Format { at, .. }
            | Error::Checksum { at, .. }
            | Error::ArtifactNotFound { at, .. }
            | Error::ArtifactExists { at, .. }
            | Error::MissingCustomObject { at, .. }
            | Error::Unsafe { at, .. } => at,
            _ => return self,
        };
        if at.0.is_none() {
            at.0 = Some(path.as_ref().to_path_buf());
        }
        self
    }
}

/// Attach a path to `io::Result`s.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}

/// Attach a path to core results produced from borrowed bytes.
pub(crate) trait FileContext<T> {
    fn in_file(self, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> FileContext<T> for Result<T> {
    fn in_file(self, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| e.in_file(path))
    }
}
