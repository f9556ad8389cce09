//! `keras_metadata.pb`: the Keras JSON tf-keras stores next to a SavedModel (spec §2.7).

use std::borrow::Cow;

use prost::Message;
use serde::Serialize;

use super::proto::SavedMetadata;
use super::VersionInfo;
use crate::error::{Error, Result};

/// One node of `keras_metadata.pb`, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KerasMetadataNode {
    /// Index into the SavedModel's object graph.
    pub node_id: i32,
    /// `root` or `root.<edge>.<edge>`.
    pub node_path: String,
    /// `_tf_keras_layer`, `_tf_keras_network`, `_tf_keras_metric`, …
    pub identifier: String,
    /// The layer/model/metric JSON.
    pub metadata: String,
    /// The writer's version record (tf-keras writes producer 2, min_consumer 1).
    pub version: Option<VersionInfo>,
}

/// A Keras object listed in `keras_metadata.pb`, with the names read from its JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KerasLayerInfo {
    /// Index into the SavedModel's object graph.
    pub node_id: i32,
    /// `root` or `root.<edge>.<edge>`.
    pub node_path: String,
    /// `_tf_keras_layer`, `_tf_keras_network`, …
    pub identifier: String,
    /// `class_name` of the metadata JSON (`Dense`, `Functional`, …).
    pub class_name: Option<String>,
    /// `name` of the metadata JSON.
    pub name: Option<String>,
}

/// Decode `keras_metadata.pb` bytes.
pub fn decode_keras_metadata(bytes: &[u8]) -> Result<Vec<KerasMetadataNode>> {
    let m = SavedMetadata::decode(bytes)
        .map_err(|e| Error::format(format!("not a valid Keras SavedMetadata protobuf: {e}")))?;
    Ok(m.nodes
        .into_iter()
        .map(|n| KerasMetadataNode {
            node_id: n.node_id,
            node_path: n.node_path,
            identifier: n.identifier,
            metadata: n.metadata,
            version: n.version.map(VersionInfo::from),
        })
        .collect())
}

impl KerasMetadataNode {
    /// The metadata as JSON. tf-keras writes Python's `json.dumps` output, which may contain the
    /// non-standard tokens `NaN`, `Infinity` and `-Infinity`; they become `null`.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&non_finite_to_null(&self.metadata)).map_err(|e| {
            Error::format(format!(
                "node {} ({}): metadata is not valid JSON: {e}",
                self.node_id, self.node_path
            ))
        })
    }

    /// The summary listed by `inspect`; empty metadata gives no names.
    pub fn layer_info(&self) -> Result<KerasLayerInfo> {
        let (class_name, name) = if self.metadata.trim().is_empty() {
            (None, None)
        } else {
            let v = self.json()?;
            let get = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
            (get("class_name"), get("name"))
        };
        Ok(KerasLayerInfo {
            node_id: self.node_id,
            node_path: self.node_path.clone(),
            identifier: self.identifier.clone(),
            class_name,
            name,
        })
    }
}

/// Replace `NaN`, `Infinity` and `-Infinity` outside JSON strings with `null` (Python's
/// `json.dumps` writes them; the registry parses configs through this too).
pub(crate) fn non_finite_to_null(s: &str) -> Cow<'_, str> {
    if !s.contains("NaN") && !s.contains("Infinity") {
        return Cow::Borrowed(s);
    }
    const TOKENS: [&str; 3] = ["-Infinity", "Infinity", "NaN"];
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut in_string = false;
    let mut start = 0; // start of the pending verbatim run
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if in_string {
            match c {
                b'\\' => i += 2,
                b'"' => {
                    in_string = false;
                    i += 1;
                }
                _ => i += 1,
            }
            continue;
        }
        if c == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if let Some(t) = TOKENS.iter().find(|t| b[i..].starts_with(t.as_bytes())) {
            // Tokens are ASCII, so `start..i` and `i + t.len()` are char boundaries.
            out.push_str(&s[start..i]);
            out.push_str("null");
            i += t.len();
            start = i;
            continue;
        }
        i += 1;
    }
    out.push_str(s.get(start..).unwrap_or(""));
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::super::proto::{KerasSavedObject, VersionDef};
    use super::*;

    #[test]
    fn savedmodel_non_finite_tokens() {
        assert_eq!(non_finite_to_null("[1, 2]"), "[1, 2]");
        assert_eq!(
            non_finite_to_null(
                r#"{"a": NaN, "b": -Infinity, "c": [Infinity], "d": "NaN \"Infinity"}"#
            ),
            r#"{"a": null, "b": null, "c": [null], "d": "NaN \"Infinity"}"#
        );
        // A lone backslash at the end of an unterminated string must not run past the end.
        assert_eq!(non_finite_to_null("\"NaN\\"), "\"NaN\\");
        assert_eq!(non_finite_to_null("é NaN é"), "é null é");
    }

    #[test]
    fn savedmodel_keras_metadata_decodes() {
        let m = SavedMetadata {
            nodes: vec![
                KerasSavedObject {
                    node_id: 0,
                    node_path: "root".into(),
                    identifier: "_tf_keras_network".into(),
                    metadata: r#"{"name": "m", "class_name": "Functional", "x": NaN}"#.into(),
                    version: Some(VersionDef {
                        producer: 2,
                        min_consumer: 1,
                        bad_consumers: vec![],
                    }),
                },
                KerasSavedObject {
                    node_id: 1,
                    node_path: "root.layer-0".into(),
                    identifier: "_tf_keras_input_layer".into(),
                    metadata: String::new(),
                    version: None,
                },
            ],
        };
        let nodes = decode_keras_metadata(&m.encode_to_vec()).unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].version.as_ref().unwrap().producer, 2);
        let info = nodes[0].layer_info().unwrap();
        assert_eq!(info.class_name.as_deref(), Some("Functional"));
        assert_eq!(info.name.as_deref(), Some("m"));
        assert_eq!(nodes[1].layer_info().unwrap().class_name, None);
    }

    #[test]
    fn savedmodel_keras_metadata_errors() {
        assert!(decode_keras_metadata(&[0x0a, 0x05, 0x10]).is_err());
        let node = KerasMetadataNode {
            node_id: 3,
            node_path: "root.x".into(),
            identifier: "_tf_keras_layer".into(),
            metadata: "{not json".into(),
            version: None,
        };
        let err = node.layer_info().unwrap_err();
        assert!(err.to_string().contains("root.x"), "{err}");
    }
}
