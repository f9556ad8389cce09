//! kerasafe's core: Keras/TensorFlow model formats read and written in Rust.
//!
//! Formats are sibling modules that read bytes into format-neutral values and write them back.
//! Nothing here depends on Python; the `python` feature adds thin bindings in [`python`].
#![deny(missing_docs)]
#![forbid(unsafe_op_in_unsafe_fn)]
// Every `unsafe` block says why it is sound (CI runs clippy with -D warnings).
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod checkpoint;
pub mod error;
pub mod file_bytes;
pub mod fsutil;
pub mod h5;
pub mod keras_zip;
pub mod progress;
pub mod registry;
#[cfg(feature = "s3")]
pub mod remote;
pub mod savedmodel;
pub mod store;
pub mod tensor;
pub mod validate;

#[cfg(feature = "python")]
mod python;

pub use error::{Error, Result};
pub use tensor::{DType, Tensor, TensorData};
