//! Custom objects and safe loading: the name logic of the custom-object registry and the
//! preflight every loader runs before anything is deserialized (spec §4.3, §4.7, §5).
//!
//! * [`names`] — `package>name` parsing, the name → object table with its collision rules, and
//!   "did you mean" suggestions.
//! * [`references`] — every class/function reference in a stored config tree, in both dialects
//!   (Keras 3 object dicts `{"module", "class_name", "config", "registered_name"}`, Keras 2 /
//!   tf-keras `{"class_name": "pkg>Name", "config"}`, string shortcuts, function objects,
//!   tf-keras `Lambda` function names), each with its config path and enclosing layer.
//! * [`resolve`] — classify each reference as a Keras built-in, a custom object answered by
//!   `custom_objects` / an active scope / the registry (in that order), missing, or unsafe.
//! * [`scan`] — the safe-mode findings: serialized bytecode, references outside Keras that reach
//!   the system, Keras utilities that are not modeling objects, layers that read other files.
//! * [`preflight`] — both at once, as the error a loader raises: every unsafe finding in one
//!   [`Error::Unsafe`], else every missing name in one [`Error::MissingCustomObject`].
//!
//! Nothing here runs Python or reads a file; callers pass the parsed config (see
//! [`parse_config`] and [`keras_metadata_document`]).

pub mod names;
pub mod policy;
mod walk;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Location, Result};
use crate::savedmodel::KerasMetadataNode;

pub use names::{
    bare_name, edit_distance, find_name, make_registered_name, parse_registered_name, suggest,
    Entry, NameMatch, RegisteredName, Registration, Registry,
};

/// What a reference names, from where it sits in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A model (Sequential, Functional, a subclassed model, a nested model).
    Model,
    /// A layer (entries of `layers`, wrapped layers, RNN cells).
    Layer,
    /// A loss (`compile_config.loss`, `training_config.loss`).
    Loss,
    /// A metric (`metrics`, `weighted_metrics`).
    Metric,
    /// An optimizer (`compile_config.optimizer`, `training_config.optimizer_config`).
    Optimizer,
    /// A learning-rate schedule.
    LearningRateSchedule,
    /// An activation (`activation`, `recurrent_activation`, …).
    Activation,
    /// An initializer (`*_initializer`).
    Initializer,
    /// A regularizer (`*_regularizer`).
    Regularizer,
    /// A constraint (`*_constraint`).
    Constraint,
    /// A dtype policy.
    DtypePolicy,
    /// A plain function (Lambda functions, `fn` of metric wrappers, function objects elsewhere).
    Function,
    /// A `__typespec__` (TensorFlow type spec).
    TypeSpec,
    /// Any other serialized object.
    Object,
}

/// How a reference is written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    /// Keras 3 object dict: `{"module", "class_name", "config", "registered_name"}`.
    Object,
    /// Keras 2 / legacy dict without `module`: `{"class_name": "pkg>Name", "config"}`.
    Legacy,
    /// A function object: `{"module": "builtins", "class_name": "function", "config": "relu"}`.
    Function,
    /// A string shortcut in a slot that names objects (`"activation": "relu"`, `"loss": "mse"`).
    String,
    /// A tf-keras `Lambda` function stored by name (`function_type: "function"` + `module`).
    LambdaFunction,
}

/// One class or function reference in a stored config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// Config path from the document root: `config.layers[1].config.kernel_initializer`.
    pub path: String,
    /// The enclosing layers by name, outermost first: `my_model/inner/dense_1`.
    pub layer: Option<String>,
    /// What the reference names.
    pub kind: Kind,
    /// How it is written.
    pub form: Form,
    /// The stored `module`, if any.
    pub module: Option<String>,
    /// The stored `class_name` (`"function"` for function objects; the string for shortcuts).
    pub class_name: String,
    /// The stored `registered_name`, if any.
    pub registered_name: Option<String>,
    /// The key a loader looks the object up by: the registered name of a class (else its class
    /// name), the name of a function, or the shortcut string.
    pub name: String,
    /// For Keras 2 module paths (`keras.engine.functional`), the Keras 3 module of the same class.
    pub keras3_module: Option<String>,
}

/// A safe-mode finding: something in the file that would run code or reach outside Keras.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Config path of the offending value.
    pub path: String,
    /// The enclosing layers by name.
    pub layer: Option<String>,
    /// `lambda_bytecode`, `unsafe_reference`, `unsafe_layer`, `tf_op` or `file_path`.
    pub code: &'static str,
    /// What is wrong, in words.
    pub message: String,
}

/// The names a loader can resolve besides Keras's built-ins, by source, in lookup order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Available {
    /// Keys of the `custom_objects=` argument (registered names or bare class names).
    pub custom_objects: Vec<String>,
    /// Keys of the active `custom_object_scope`s, innermost first.
    pub scoped: Vec<String>,
    /// Registered names (kerasafe's registry and the installed Keras's).
    pub registered: Vec<String>,
    /// Extra built-in names (public names of the installed Keras, beyond the embedded table).
    pub builtins: Vec<String>,
}

/// Where a custom object was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The `custom_objects=` argument.
    CustomObjects,
    /// An active `custom_object_scope`.
    Scope,
    /// The registry.
    Registry,
}

/// How a reference resolves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// A Keras built-in (by module or by name).
    Builtin,
    /// A custom object: `provided` is the key under which `source` holds it.
    Custom {
        /// Which source answered.
        source: Source,
        /// The key in that source (`ScaledDense` answering `Course>ScaledDense`).
        provided: String,
    },
    /// Nobody provides it.
    Missing {
        /// Close names among the available ones, best first.
        suggestions: Vec<String>,
        /// Several packaged names answer this bare name; pass the one you mean.
        ambiguous: Vec<String>,
    },
    /// Refused by the safe-mode policy.
    Unsafe {
        /// Why.
        reason: String,
    },
}

/// A reference and how it resolves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolved {
    /// The reference.
    #[serde(flatten)]
    pub reference: Reference,
    /// Its resolution.
    pub resolution: Status,
}

/// The outcome of a successful [`preflight`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct Preflight {
    /// Every reference, resolved.
    pub references: Vec<Resolved>,
    /// Safe-mode findings (non-empty only when `safe_mode` was off: the caller warns).
    pub findings: Vec<Finding>,
}

/// Every class/function reference in `config`, in document order.
pub fn references(config: &Value) -> Vec<Reference> {
    walk::walk(config).refs
}

/// Why the safe-mode policy refuses a reference, if it does.
pub fn unsafe_reference(r: &Reference) -> Option<String> {
    if r.kind == Kind::TypeSpec {
        let m = r.module.as_deref().unwrap_or("");
        if m == "tensorflow" || m.starts_with("tensorflow.") || policy::is_keras_module(m) {
            return None;
        }
    }
    let function = matches!(r.form, Form::Function | Form::LambdaFunction | Form::String);
    let name = if function { &r.name } else { &r.class_name };
    policy::unsafe_reason(r.module.as_deref(), name, function)
}

/// The safe-mode findings of `config`: bytecode payloads, unsafe references and layers.
/// Static: nothing is imported or deserialized.
pub fn scan(config: &Value) -> Vec<Finding> {
    let w = walk::walk(config);
    findings_of(w.findings, &w.refs)
}

fn findings_of(mut findings: Vec<Finding>, refs: &[Reference]) -> Vec<Finding> {
    for r in refs {
        if let Some(reason) = unsafe_reference(r) {
            findings.push(Finding {
                path: r.path.clone(),
                layer: r.layer.clone(),
                code: "unsafe_reference",
                message: reason,
            });
        }
    }
    findings.sort_by(|a, b| a.path.cmp(&b.path));
    findings
}

fn is_builtin(name: &str, available: &Available) -> bool {
    policy::is_builtin_name(name) || available.builtins.iter().any(|b| b == name)
}

/// Classify one reference against `available` (lookup order: `custom_objects`, scopes, registry,
/// Keras built-ins).
pub fn resolve_one(r: &Reference, available: &Available) -> Status {
    if let Some(reason) = unsafe_reference(r) {
        return Status::Unsafe { reason };
    }
    let keras_module = r.module.as_deref().is_some_and(policy::is_keras_module);
    // A public Keras object (`registered_name: null`) is looked up by module only.
    let public_keras = r.form == Form::Object && r.registered_name.is_none() && keras_module;
    if !public_keras {
        let sources = [
            (Source::CustomObjects, &available.custom_objects),
            (Source::Scope, &available.scoped),
            (Source::Registry, &available.registered),
        ];
        for (source, keys) in sources {
            match find_name(&r.name, keys.iter().map(String::as_str)) {
                NameMatch::Found(provided) => return Status::Custom { source, provided },
                NameMatch::Ambiguous(names) => {
                    return Status::Missing {
                        suggestions: Vec::new(),
                        ambiguous: names,
                    }
                }
                NameMatch::None => {}
            }
        }
    }
    let custom_name = parse_registered_name(&r.name).package.is_some();
    let builtin = match r.form {
        _ if r.kind == Kind::TypeSpec => true,
        // Keras resolves these by importing the Keras module (only Keras packages).
        Form::Object | Form::Function | Form::LambdaFunction if keras_module => {
            !custom_name || is_builtin(&r.name, available)
        }
        Form::Object => false,
        Form::Function | Form::LambdaFunction => {
            matches!(r.module.as_deref(), None | Some("builtins")) && is_builtin(&r.name, available)
        }
        Form::Legacy | Form::String => is_builtin(&r.name, available),
    };
    if builtin {
        return Status::Builtin;
    }
    Status::Missing {
        suggestions: suggestions_for(&r.name, available),
        ambiguous: Vec::new(),
    }
}

fn suggestions_for(name: &str, available: &Available) -> Vec<String> {
    let mut candidates: Vec<&str> = available
        .custom_objects
        .iter()
        .chain(&available.scoped)
        .chain(&available.registered)
        .map(String::as_str)
        .collect();
    let builtins;
    if parse_registered_name(name).package.is_none() {
        builtins = policy::builtin_names();
        candidates.extend(builtins.iter().map(String::as_str));
    }
    suggest(name, candidates)
}

/// Resolve every reference in `config`.
pub fn resolve(config: &Value, available: &Available) -> Vec<Resolved> {
    references(config)
        .into_iter()
        .map(|reference| {
            let resolution = resolve_one(&reference, available);
            Resolved {
                reference,
                resolution,
            }
        })
        .collect()
}

/// The check every loader runs before deserializing: with `safe_mode`, any finding of [`scan`]
/// is an [`Error::Unsafe`] listing all of them with their config paths; then any reference that
/// nobody provides is an [`Error::MissingCustomObject`] naming all of them, where each is used,
/// and the closest available names. Without `safe_mode`, findings are returned for the caller
/// to warn about. Errors carry no file; add it with [`Error::in_file`].
pub fn preflight(config: &Value, available: &Available, safe_mode: bool) -> Result<Preflight> {
    let w = walk::walk(config);
    let findings = findings_of(w.findings, &w.refs);
    if safe_mode && !findings.is_empty() {
        return Err(Error::Unsafe {
            at: Location(None),
            msg: unsafe_message(&findings),
        });
    }
    let references: Vec<Resolved> = w
        .refs
        .into_iter()
        .map(|reference| {
            let resolution = resolve_one(&reference, available);
            Resolved {
                reference,
                resolution,
            }
        })
        .collect();
    if let Some((names, msg)) = missing_message(&references) {
        return Err(Error::MissingCustomObject {
            at: Location(None),
            names,
            msg,
        });
    }
    Ok(Preflight {
        references,
        findings,
    })
}

const MAX_LISTED: usize = 25;

/// The message of [`Error::Unsafe`] for `findings` (empty findings give an empty string).
pub fn unsafe_message(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return String::new();
    }
    let mut msg = format!(
        "refused to load (safe_mode=True): the file would run code or reach outside Keras when \
         deserialized; {} finding{}:",
        findings.len(),
        if findings.len() == 1 { "" } else { "s" }
    );
    for f in findings.iter().take(MAX_LISTED) {
        msg.push_str(&format!("\n  - at {}", f.path));
        if let Some(layer) = &f.layer {
            msg.push_str(&format!(" (in {layer:?})"));
        }
        msg.push_str(&format!(": {}", f.message));
    }
    if findings.len() > MAX_LISTED {
        msg.push_str(&format!("\n  … and {} more", findings.len() - MAX_LISTED));
    }
    msg.push_str(
        "\nNothing was deserialized. Load with safe_mode=False only if you trust the file's author.",
    );
    msg
}

/// One missing custom object, with every place it is used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingObject {
    /// The name a loader looks up (`Course>ScaledDense`).
    pub name: String,
    /// What it is, from its first use.
    pub kind: Kind,
    /// Where it is used: config path plus enclosing layers, in document order.
    pub used_at: Vec<String>,
    /// Close available names, best first.
    pub suggestions: Vec<String>,
    /// Packaged names that all answer this bare name.
    pub ambiguous: Vec<String>,
}

/// The missing objects among `resolved`, grouped by name in first-use order.
pub fn missing_objects(resolved: &[Resolved]) -> Vec<MissingObject> {
    let mut out: Vec<MissingObject> = Vec::new();
    for r in resolved {
        let Status::Missing {
            suggestions,
            ambiguous,
        } = &r.resolution
        else {
            continue;
        };
        let used = match &r.reference.layer {
            Some(layer) => format!("{} (in {layer:?})", r.reference.path),
            None => r.reference.path.clone(),
        };
        match out.iter_mut().find(|m| m.name == r.reference.name) {
            Some(m) => m.used_at.push(used),
            None => out.push(MissingObject {
                name: r.reference.name.clone(),
                kind: r.reference.kind,
                used_at: vec![used],
                suggestions: suggestions.clone(),
                ambiguous: ambiguous.clone(),
            }),
        }
    }
    out
}

/// The names and message of [`Error::MissingCustomObject`], or `None` when nothing is missing.
pub fn missing_message(resolved: &[Resolved]) -> Option<(Vec<String>, String)> {
    let missing = missing_objects(resolved);
    if missing.is_empty() {
        return None;
    }
    let n = missing.len();
    let mut msg = if n == 1 {
        "1 custom object needed to load this model is neither registered nor passed in \
         custom_objects:"
            .to_string()
    } else {
        format!(
            "{n} custom objects needed to load this model are neither registered nor passed in \
             custom_objects:"
        )
    };
    for m in &missing {
        let kind = serde_json::to_value(m.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
            .replace('_', " ");
        msg.push_str(&format!(
            "\n  - {:?} ({kind}) used at {}",
            m.name, m.used_at[0]
        ));
        let more = m.used_at.len() - 1;
        if more > 0 {
            msg.push_str(&format!(
                " and {more} other place{}",
                if more == 1 { "" } else { "s" }
            ));
        }
        if !m.ambiguous.is_empty() {
            msg.push_str(&format!(
                "; ambiguous: {} all match, pass one of them explicitly",
                quoted(&m.ambiguous)
            ));
        } else if !m.suggestions.is_empty() {
            msg.push_str(&format!("; did you mean {}?", quoted(&m.suggestions)));
        }
    }
    let example: Vec<String> = missing
        .iter()
        .take(2)
        .map(|m| {
            let bare = bare_name(&m.name);
            format!("{bare:?}: {bare}")
        })
        .collect();
    msg.push_str(&format!(
        "\nImport the code that defines them (decorated with @kerasafe.register_serializable) \
         before loading, or pass custom_objects={{{}{}}} (registered names and bare class names \
         are both accepted).",
        example.join(", "),
        if missing.len() > 2 { ", …" } else { "" }
    ));
    Some((missing.into_iter().map(|m| m.name).collect(), msg))
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Parse a config written by Python's `json.dumps`, which may contain `NaN`, `Infinity` and
/// `-Infinity` (spec §6 item 26); they become `null` (the registry never needs their values).
pub fn parse_config(text: &str) -> Result<Value> {
    serde_json::from_str(&crate::savedmodel::keras::non_finite_to_null(text))
        .map_err(|e| Error::format(format!("config is not valid JSON: {e}")))
}

/// One document for the nodes of `keras_metadata.pb`: `{node_path: metadata JSON}` (nodes with
/// empty metadata are left out; a repeated node path keeps its first node). Every node is walked:
/// tf-keras rebuilds layers from their own node's metadata, not only from the root's
/// `model_config`.
pub fn keras_metadata_document(nodes: &[KerasMetadataNode]) -> Result<Value> {
    let mut doc = serde_json::Map::new();
    for node in nodes {
        if node.metadata.trim().is_empty() || doc.contains_key(&node.node_path) {
            continue;
        }
        doc.insert(node.node_path.clone(), node.json()?);
    }
    Ok(Value::Object(doc))
}
