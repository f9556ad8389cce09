//! Bindings for HDF5 trees and `.keras` archives. A tree crosses as nested tuples:
//! group = `("group", attrs, [(name, node)])`, dataset = `("dataset", attrs, dtype, shape, data)`
//! where data is a flat uint8 view (or a list of bytes for strings) and attrs is
//! `[(name, (kind, value))]`.

use std::borrow::Cow;
use std::path::PathBuf;

use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use super::errors::{self, run};
use super::memory::{Input, Source};
use super::progress::{run_counted, ProgressCounter};
use crate::h5::{self, AttrValue, Attrs, H5Dataset, H5Group, H5Node, Values};
use crate::keras_zip::{self, Asset, AssetData, FileKind, KerasArchive, WeightsSource};
use crate::tensor::{DType, TensorData};

#[derive(FromPyObject)]
enum RawData<'py> {
    Bytes(PyReadonlyArray1<'py, u8>),
    Strings(Vec<Vec<u8>>),
}

/// A Python tree extracted (holding borrowed numpy views) before the GIL is released.
enum RawNode<'py> {
    Group(Vec<(String, AttrValue)>, Vec<(String, RawNode<'py>)>),
    Dataset(Vec<(String, AttrValue)>, String, Vec<u64>, RawData<'py>),
}

fn extract_node<'py>(obj: &Bound<'py, PyAny>) -> PyResult<RawNode<'py>> {
    let kind: String = obj.get_item(0)?.extract()?;
    let attrs = extract_attrs(&obj.get_item(1)?)?;
    match kind.as_str() {
        "group" => {
            let mut children = Vec::new();
            for item in obj.get_item(2)?.try_iter()? {
                let item = item?;
                let name: String = item.get_item(0)?.extract()?;
                children.push((name, extract_node(&item.get_item(1)?)?));
            }
            Ok(RawNode::Group(attrs, children))
        }
        "dataset" => Ok(RawNode::Dataset(
            attrs,
            obj.get_item(2)?.extract()?,
            obj.get_item(3)?.extract()?,
            obj.get_item(4)?.extract()?,
        )),
        other => Err(errors::invalid(format!("unknown HDF5 node kind {other:?}"))),
    }
}

/// Decode one `(kind, value)` attribute; the kind, not the Python type, decides the HDF5 type.
fn attr_value(kind: &str, v: &Bound<'_, PyAny>) -> PyResult<AttrValue> {
    Ok(match kind {
        "str" => AttrValue::Str(v.extract()?),
        "bytes" => AttrValue::Bytes(
            v.extract::<Vec<u8>>()
                .or_else(|_| v.cast::<PyBytes>().map(|b| b.as_bytes().to_vec()))?,
        ),
        "str_list" => AttrValue::StrList(v.extract()?),
        "bytes_list" => AttrValue::BytesList(bytes_list(v)?),
        "fixed_bytes_list" => AttrValue::FixedBytesList(bytes_list(v)?),
        "int" => AttrValue::Int(v.extract()?),
        "float" => AttrValue::Float(v.extract()?),
        "bool" => AttrValue::Bool(v.extract()?),
        "ints" => AttrValue::Ints(v.extract()?),
        "floats" => AttrValue::Floats(v.extract()?),
        other => return Err(errors::invalid(format!("unknown attribute kind {other:?}"))),
    })
}

fn bytes_list(v: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<u8>>> {
    v.try_iter()?
        .map(|item| Ok(item?.cast::<PyBytes>()?.as_bytes().to_vec()))
        .collect()
}

fn extract_attrs(obj: &Bound<'_, PyAny>) -> PyResult<Vec<(String, AttrValue)>> {
    let mut out = Vec::new();
    for item in obj.try_iter()? {
        let item = item?;
        let name: String = item.get_item(0)?.extract()?;
        let pair = item.get_item(1)?;
        let kind: String = pair.get_item(0)?.extract()?;
        let value = attr_value(&kind, &pair.get_item(1)?)
            .map_err(|e| errors::invalid(format!("attribute {name:?}: {e}")))?;
        out.push((name, value));
    }
    Ok(out)
}

fn attrs(raw: &[(String, AttrValue)]) -> Attrs {
    let mut out = Attrs::new();
    for (name, value) in raw {
        out.set(name.clone(), value.clone());
    }
    out
}

fn build<'a>(raw: &'a RawNode<'_>) -> PyResult<H5Node<'a>> {
    Ok(match raw {
        RawNode::Group(a, children) => {
            let mut g = H5Group {
                attrs: attrs(a),
                children: Vec::with_capacity(children.len()),
            };
            for (name, child) in children {
                g.children.push((name.clone(), build(child)?));
            }
            H5Node::Group(g)
        }
        RawNode::Dataset(a, dtype, shape, data) => {
            let dtype = DType::from_name(dtype).map_err(errors::to_py)?;
            let data = match data {
                RawData::Bytes(b) => TensorData::Bytes(Cow::Borrowed(
                    b.as_slice().map_err(|e| errors::invalid(e.to_string()))?,
                )),
                RawData::Strings(s) => {
                    TensorData::Strings(s.iter().map(|x| Cow::Borrowed(x.as_slice())).collect())
                }
            };
            H5Node::Dataset(H5Dataset {
                dtype,
                shape: shape.clone(),
                data: Some(data),
                attrs: attrs(a),
                storage: None,
            })
        }
    })
}

fn root_group<'a>(raw: &'a RawNode<'_>) -> PyResult<H5Group<'a>> {
    match build(raw)? {
        H5Node::Group(g) => Ok(g),
        H5Node::Dataset(_) => Err(errors::invalid(
            "the root of an HDF5 tree must be a group".into(),
        )),
    }
}

fn attrs_to_py<'py>(py: Python<'py>, a: &Attrs) -> PyResult<Bound<'py, PyList>> {
    let items = PyList::empty(py);
    for (name, value) in a.iter() {
        let v: Bound<'py, PyAny> = match value {
            AttrValue::Str(s) => ("str", s).into_pyobject(py)?.into_any(),
            AttrValue::Bytes(b) => ("bytes", PyBytes::new(py, b)).into_pyobject(py)?.into_any(),
            AttrValue::StrList(v) => ("str_list", v).into_pyobject(py)?.into_any(),
            AttrValue::BytesList(v) => (
                "bytes_list",
                v.iter().map(|b| PyBytes::new(py, b)).collect::<Vec<_>>(),
            )
                .into_pyobject(py)?
                .into_any(),
            AttrValue::FixedBytesList(v) => (
                "fixed_bytes_list",
                v.iter().map(|b| PyBytes::new(py, b)).collect::<Vec<_>>(),
            )
                .into_pyobject(py)?
                .into_any(),
            AttrValue::Int(i) => ("int", i).into_pyobject(py)?.into_any(),
            AttrValue::Float(f) => ("float", f).into_pyobject(py)?.into_any(),
            AttrValue::Bool(b) => ("bool", b).into_pyobject(py)?.into_any(),
            AttrValue::Ints(v) => ("ints", v).into_pyobject(py)?.into_any(),
            AttrValue::Floats(v) => ("floats", v).into_pyobject(py)?.into_any(),
            AttrValue::Other { description } => {
                ("other", description).into_pyobject(py)?.into_any()
            }
        };
        items.append((name, v))?;
    }
    Ok(items)
}

/// Which values a tree crossing into Python may lack: with `deferred`, a dataset without
/// values but with a raw offset crosses with that offset (an int) in place of its data.
fn node_to_py<'py>(
    py: Python<'py>,
    node: H5Node<'static>,
    deferred: bool,
) -> PyResult<Bound<'py, PyAny>> {
    match node {
        H5Node::Group(g) => group_to_py(py, g, deferred),
        H5Node::Dataset(d) => {
            let a = attrs_to_py(py, &d.attrs)?;
            let raw_offset = d.storage.as_ref().and_then(|s| s.raw_offset);
            let data: Bound<'py, PyAny> = match d.data {
                None => match raw_offset {
                    Some(at) if deferred => at.into_pyobject(py)?.into_any(),
                    _ => py.None().into_bound(py),
                },
                Some(TensorData::Bytes(b)) => PyArray1::from_vec(py, b.into_owned()).into_any(),
                Some(TensorData::Strings(s)) => {
                    PyList::new(py, s.iter().map(|x| PyBytes::new(py, x)))?.into_any()
                }
            };
            Ok(PyTuple::new(
                py,
                [
                    "dataset".into_pyobject(py)?.into_any(),
                    a.into_any(),
                    d.dtype.name().into_pyobject(py)?.into_any(),
                    d.shape.into_pyobject(py)?.into_any(),
                    data,
                ],
            )?
            .into_any())
        }
    }
}

fn group_to_py<'py>(
    py: Python<'py>,
    g: H5Group<'static>,
    deferred: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let a = attrs_to_py(py, &g.attrs)?;
    let children = PyList::empty(py);
    for (name, child) in g.children {
        children.append((name, node_to_py(py, child, deferred)?))?;
    }
    Ok(("group", a, children).into_pyobject(py)?.into_any())
}

/// Write an HDF5 file from a tree (temp file, then rename); `for_artifact`: also hash it while
/// writing, for the manifest of the artifact being staged (`h5::write_file_for_artifact`).
#[pyfunction]
#[pyo3(signature = (path, tree, progress=None, for_artifact=false))]
fn h5_write(
    py: Python<'_>,
    path: PathBuf,
    tree: &Bound<'_, PyAny>,
    progress: Option<&Bound<'_, ProgressCounter>>,
    for_artifact: bool,
) -> PyResult<()> {
    let raw = extract_node(tree)?;
    let root = root_group(&raw)?;
    let write = if for_artifact {
        h5::write_file_for_artifact
    } else {
        h5::write_file
    };
    run_counted(py, progress, || write(&path, &root))
}

/// The core's read mode for `values` / `deferred`.
fn values_mode(values: bool, deferred: bool) -> Values {
    match (values, deferred) {
        (false, _) => Values::Skip,
        (true, false) => Values::All,
        (true, true) => Values::Deferred,
    }
}

/// Read an HDF5 file (a path or a `MemoryFile`) into a tree; `values=False` reads names,
/// attributes, dtypes and shapes only; `deferred=True` leaves large values in the file, each
/// such dataset's data being its offset there (for `FileRanges.read`).
#[pyfunction]
#[pyo3(signature = (path, values=true, progress=None, deferred=false))]
fn h5_read<'py>(
    py: Python<'py>,
    path: Source<'_>,
    values: bool,
    progress: Option<&Bound<'_, ProgressCounter>>,
    deferred: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let input = path.input();
    let mode = values_mode(values, deferred);
    let g = run_counted(py, progress, || match &input {
        Input::Path(p) => h5::read_file_with(p, mode),
        Input::Memory { name, bytes } => h5::read_image(name, bytes, mode),
    })?;
    group_to_py(py, g, mode == Values::Deferred)
}

/// `"zip"`, `"hdf5"`, `"directory"` or `"other"`, from the file's (a path's or a
/// `MemoryFile`'s) first bytes.
#[pyfunction]
fn sniff(py: Python<'_>, path: Source<'_>) -> PyResult<&'static str> {
    let input = path.input();
    Ok(
        match run(py, || match &input {
            Input::Path(p) => keras_zip::sniff(p),
            Input::Memory { bytes, .. } => Ok(keras_zip::sniff_bytes(bytes)),
        })? {
            FileKind::Zip => "zip",
            FileKind::Hdf5 => "hdf5",
            FileKind::Directory => "directory",
            FileKind::Other => "other",
        },
    )
}

/// Write a `.keras` archive: config, metadata, the weights tree, and asset files
/// `(name below assets/, path on disk)`; `for_artifact` as for `h5_write`.
#[pyfunction]
#[pyo3(signature = (path, config_json, metadata_json, weights, assets, progress=None, for_artifact=false))]
#[allow(clippy::too_many_arguments)]
fn keras_archive_write(
    py: Python<'_>,
    path: PathBuf,
    config_json: String,
    metadata_json: String,
    weights: &Bound<'_, PyAny>,
    assets: Vec<(String, PathBuf)>,
    progress: Option<&Bound<'_, ProgressCounter>>,
    for_artifact: bool,
) -> PyResult<()> {
    let raw = extract_node(weights)?;
    let root = root_group(&raw)?;
    let assets: Vec<Asset<'_>> = assets
        .iter()
        .map(|(n, p)| Asset {
            name: n,
            data: AssetData::File(p),
        })
        .collect();
    let write = if for_artifact {
        keras_zip::write_archive_for_artifact
    } else {
        keras_zip::write_archive
    };
    run_counted(py, progress, || {
        write(
            &path,
            &config_json,
            &metadata_json,
            WeightsSource::Tree(&root),
            &assets,
        )
    })
}

/// The `.keras` archive at a path or in a `MemoryFile`, its index validated.
fn open_archive(input: &Input) -> crate::Result<KerasArchive> {
    match input {
        Input::Path(p) => keras_zip::read_archive(p),
        Input::Memory { name, bytes } => keras_zip::read_archive_bytes(name, bytes.clone()),
    }
}

/// Read a `.keras` archive (a path or a `MemoryFile`): `(config_json, metadata_json or None,
/// weights tree or None, asset names)`; without `weights` the weights member is not read;
/// `values` and `deferred` as for `h5_read`, offsets being into the archive.
#[pyfunction]
#[pyo3(signature = (path, values=true, progress=None, weights=true, deferred=false))]
fn keras_archive_read<'py>(
    py: Python<'py>,
    path: Source<'_>,
    values: bool,
    progress: Option<&Bound<'_, ProgressCounter>>,
    weights: bool,
    deferred: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let input = path.input();
    let mode = values_mode(values, deferred);
    let (config, metadata, tree, assets) = run_counted(py, progress, || {
        let archive = open_archive(&input)?;
        let tree = match archive.weights_member() {
            Some(_) if !weights => None,
            Some(_) => Some(match mode {
                Values::All => archive.read_weights()?,
                Values::Skip => archive.read_weights_structure()?,
                Values::Deferred => archive.read_weights_deferred()?,
            }),
            None => None,
        };
        let assets: Vec<String> = archive.assets().map(|m| m.name.clone()).collect();
        Ok((
            archive.config_json.clone(),
            archive.metadata_json.clone(),
            tree,
            assets,
        ))
    })?;
    let tree = match tree {
        Some(g) => group_to_py(py, g, mode == Values::Deferred)?,
        None => py.None().into_bound(py),
    };
    Ok((config, metadata, tree, assets)
        .into_pyobject(py)?
        .into_any())
}

/// Extract a `.keras` archive's asset members (a path's or a `MemoryFile`'s) into `assets_dir`,
/// keeping their paths below `assets/` (names validated by the core).
#[pyfunction]
fn keras_archive_extract_assets(
    py: Python<'_>,
    path: Source<'_>,
    assets_dir: PathBuf,
) -> PyResult<()> {
    let input = path.input();
    run(py, || {
        open_archive(&input)?
            .extract_assets(&assets_dir)
            .map(|_| ())
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(h5_write, m)?)?;
    m.add_function(wrap_pyfunction!(h5_read, m)?)?;
    m.add_function(wrap_pyfunction!(sniff, m)?)?;
    m.add_function(wrap_pyfunction!(keras_archive_write, m)?)?;
    m.add_function(wrap_pyfunction!(keras_archive_read, m)?)?;
    m.add_function(wrap_pyfunction!(keras_archive_extract_assets, m)?)?;
    Ok(())
}
