//! The walk over a stored Keras config tree, in both dialects: every class/function reference
//! with its config path, kind and enclosing layer, and the payloads that would run code.

use serde_json::{Map, Value};

use super::policy;
use super::{Finding, Form, Kind, Reference};

/// What a value's position says about it: the kind of object expected there, and whether a
/// plain string there names an object (`"activation": "relu"`) or is just data.
#[derive(Debug, Clone, Copy)]
struct Slot {
    kind: Kind,
    strings: bool,
}

const fn slot(kind: Kind, strings: bool) -> Option<Slot> {
    Some(Slot { kind, strings })
}

/// The slot a key of a config or compile dict opens.
fn slot_for_key(key: &str) -> Option<Slot> {
    match key {
        "layers" | "layer" | "backward_layer" | "forward_layer" | "cell" | "cells" => {
            slot(Kind::Layer, false)
        }
        "model_config" => slot(Kind::Model, false),
        "optimizer" | "optimizer_config" | "inner_optimizer" => slot(Kind::Optimizer, true),
        "learning_rate" => slot(Kind::LearningRateSchedule, false),
        "loss" | "losses" => slot(Kind::Loss, true),
        "metrics" | "weighted_metrics" => slot(Kind::Metric, true),
        "fn" => slot(Kind::Function, true),
        "function" => slot(Kind::Function, false),
        "dtype" | "dtype_policy" => slot(Kind::DtypePolicy, false),
        k if k == "activation" || k.ends_with("_activation") => slot(Kind::Activation, true),
        k if k.ends_with("initializer") => slot(Kind::Initializer, true),
        k if k.ends_with("regularizer") => slot(Kind::Regularizer, true),
        k if k.ends_with("constraint") => slot(Kind::Constraint, true),
        _ => None,
    }
}

/// `class_name` values that are data markers, not classes (spec §4.3 and §2.7 json_utils).
const MARKERS: [&str; 9] = [
    "__keras_tensor__",
    "__tensor__",
    "__numpy__",
    "__bytes__",
    "__ellipsis__",
    "__slice__",
    "__tuple__",
    "__typespec__",
    "__lambda__",
];
/// tf-keras json_utils markers; they are markers only when the dict has no `config`.
const LEGACY_MARKERS: [&str; 4] = ["TensorShape", "TypeSpec", "CompositeTensor", "__ellipsis__"];

const MODEL_CLASSES: [&str; 3] = ["Sequential", "Functional", "Model"];

#[derive(Debug, Clone, Copy)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn is_identifier(k: &str) -> bool {
    let mut chars = k.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Render a path: `config.layers[2].config.kernel_initializer`, `["root.layer-2"].config`.
fn render(path: &[Seg<'_>]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if is_identifier(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Key(k) => {
                out.push('[');
                out.push_str(&serde_json::to_string(k).unwrap_or_default());
                out.push(']');
            }
            Seg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    if out.is_empty() {
        out.push_str("<root>");
    }
    out
}

/// Everything one walk finds.
#[derive(Debug, Default)]
pub(super) struct Walk {
    pub refs: Vec<Reference>,
    pub findings: Vec<Finding>,
}

/// Walk `config` (a whole document: `config.json`, an `.h5` `{"model_config", "training_config"}`
/// pair, or the node map of `keras_metadata.pb`).
pub(super) fn walk(config: &Value) -> Walk {
    let mut w = Walker {
        path: Vec::new(),
        layers: Vec::new(),
        out: Walk::default(),
    };
    w.visit(config, None);
    w.out
}

struct Walker<'a> {
    path: Vec<Seg<'a>>,
    layers: Vec<String>,
    out: Walk,
}

fn str_of<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v str> {
    map.get(key).and_then(Value::as_str)
}

impl<'a> Walker<'a> {
    fn here(&self) -> String {
        render(&self.path)
    }

    fn layer(&self) -> Option<String> {
        (!self.layers.is_empty()).then(|| self.layers.join("/"))
    }

    fn finding(&mut self, code: &'static str, message: String) {
        self.out.findings.push(Finding {
            path: self.here(),
            layer: self.layer(),
            code,
            message,
        });
    }

    fn at_key(&mut self, key: &'a str, v: &'a Value, slot: Option<Slot>) {
        self.path.push(Seg::Key(key));
        self.visit(v, slot);
        self.path.pop();
    }

    fn visit(&mut self, v: &'a Value, slot: Option<Slot>) {
        match v {
            Value::Object(map) => match str_of(map, "class_name") {
                Some(cn) if is_marker(cn, map) => self.marker(cn, map),
                Some(cn) => self.object(cn, map, slot),
                None => {
                    // Plain dicts: compile configs, layer configs, `{"output": "mse"}` loss maps.
                    let inherit = slot.filter(|s| matches!(s.kind, Kind::Loss | Kind::Metric));
                    for (k, x) in map {
                        self.at_key(k, x, slot_for_key(k).or(inherit));
                    }
                }
            },
            Value::Array(items) => {
                for (i, x) in items.iter().enumerate() {
                    self.path.push(Seg::Index(i));
                    self.visit(x, slot);
                    self.path.pop();
                }
            }
            Value::String(s) => {
                if let Some(Slot {
                    kind,
                    strings: true,
                }) = slot
                {
                    if !s.is_empty() {
                        self.reference(kind, Form::String, None, s, None, s);
                    }
                }
            }
            _ => {}
        }
    }

    fn reference(
        &mut self,
        kind: Kind,
        form: Form,
        module: Option<&str>,
        class_name: &str,
        registered_name: Option<&str>,
        name: &str,
    ) {
        self.out.refs.push(Reference {
            path: self.here(),
            layer: self.layer(),
            kind,
            form,
            module: module.map(str::to_string),
            class_name: class_name.to_string(),
            registered_name: registered_name.map(str::to_string),
            name: name.to_string(),
            keras3_module: module.and_then(policy::keras3_module).map(str::to_string),
        });
    }

    fn marker(&mut self, cn: &'a str, map: &'a Map<String, Value>) {
        match cn {
            "__lambda__" => {
                self.finding(
                    "lambda_bytecode",
                    "serialized Python lambda (__lambda__: marshal bytecode); deserializing it runs \
                     code from the file"
                        .into(),
                );
                return; // never look inside the payload
            }
            "__typespec__" => {
                let spec = str_of(map, "spec_name").unwrap_or("");
                let registered = str_of(map, "registered_name");
                let name = registered.filter(|r| !r.is_empty()).unwrap_or(spec);
                self.reference(
                    Kind::TypeSpec,
                    Form::Object,
                    str_of(map, "module"),
                    spec,
                    registered,
                    name,
                );
            }
            _ => {}
        }
        // Markers hold data, but a hostile file can nest objects (or lambdas) anywhere.
        for (k, x) in map {
            if k != "class_name" {
                self.at_key(k, x, None);
            }
        }
    }

    fn object(&mut self, cn: &'a str, map: &'a Map<String, Value>, slot: Option<Slot>) {
        let module = str_of(map, "module");
        let registered = str_of(map, "registered_name");
        let config = map.get("config");
        let form = if map.contains_key("module") {
            Form::Object
        } else {
            Form::Legacy
        };
        if cn == "function" {
            let fname = config.and_then(Value::as_str).unwrap_or("");
            let kind = slot.map_or(Kind::Function, |s| s.kind);
            self.reference(kind, Form::Function, module, cn, registered, fname);
            if !config.is_some_and(Value::is_string) {
                for (k, x) in map {
                    if k == "config" {
                        self.at_key(k, x, None);
                    }
                }
            }
            return;
        }
        let cfg = config.and_then(Value::as_object);
        let bare = super::names::bare_name(cn);
        let model_like = MODEL_CLASSES.contains(&bare)
            || cfg.is_some_and(|c| c.get("layers").is_some_and(Value::is_array));
        let kind = if model_like {
            Kind::Model
        } else if let Some(s) = slot {
            s.kind
        } else if cfg.is_some_and(|c| c.get("trainable").is_some_and(Value::is_boolean))
            || map.get("name").is_some_and(Value::is_string)
        {
            // Layer configs carry `trainable`; layer entries of Functional configs and
            // keras_metadata.pb nodes carry a top-level `name`.
            Kind::Layer
        } else {
            Kind::Object
        };
        let lookup = registered
            .filter(|r| !r.is_empty() && *r != "function")
            .unwrap_or(cn);
        let named = matches!(kind, Kind::Layer | Kind::Model);
        if named {
            let name = str_of(map, "name")
                .or_else(|| cfg.and_then(|c| str_of(c, "name")))
                .unwrap_or(bare);
            self.layers.push(name.to_string());
        }
        self.reference(kind, form, module, cn, registered, lookup);

        if let Some(why) = policy::unsafe_layer(cn) {
            self.finding("unsafe_layer", format!("{cn} layer: {why}"));
        }
        let mut handled: Vec<&str> = Vec::new();
        if let Some(c) = cfg {
            self.path.push(Seg::Key("config"));
            match bare {
                "Lambda" => self.lambda(c, &mut handled),
                "TFOpLambda" | "SlicingOpLambda" => {
                    if let Some(f) = str_of(c, "function") {
                        handled.push("function");
                        if let Some(why) = policy::unsafe_tf_op(f) {
                            self.path.push(Seg::Key("function"));
                            self.finding("tf_op", why);
                            self.path.pop();
                        }
                    }
                }
                b if policy::FILE_READING_LAYERS.contains(&b) => {
                    for key in ["vocabulary", "idf_weights"] {
                        if let Some(p) = str_of(c, key) {
                            self.path.push(Seg::Key(key));
                            self.finding(
                                "file_path",
                                format!(
                                    "{bare}.{key} is a file path ({p:?}) read when the layer is \
                                     built: a model file may not make the loader read other files"
                                ),
                            );
                            self.path.pop();
                        }
                    }
                }
                _ => {}
            }
            for (k, x) in c {
                if !handled.contains(&k.as_str()) {
                    self.at_key(k, x, slot_for_key(k));
                }
            }
            self.path.pop();
        }
        for (k, x) in map {
            match k.as_str() {
                "class_name"
                | "module"
                | "registered_name"
                | "shared_object_id"
                | "name"
                | "__passive_serialization__" => {}
                "config" if cfg.is_some() => {}
                "config" => self.at_key(k, x, None),
                _ => self.at_key(k, x, slot_for_key(k)),
            }
        }
        if named {
            self.layers.pop();
        }
    }

    /// A `Lambda` layer's config: Keras 3 stores `function` as an object dict (visited as any
    /// other); tf-keras as `function` + `function_type` (`lambda`: a bytecode tuple, `function`:
    /// a name looked up in `module`, `raw`: data), and the same for `output_shape` and `mask`.
    fn lambda(&mut self, c: &'a Map<String, Value>, handled: &mut Vec<&'a str>) {
        const PARTS: [(&str, &str, &str); 3] = [
            ("function", "function_type", "module"),
            ("output_shape", "output_shape_type", "output_shape_module"),
            ("mask", "mask_type", "mask_module"),
        ];
        for (key, type_key, module_key) in PARTS {
            let Some(v) = c.get(key) else { continue };
            let ty = str_of(c, type_key);
            self.path.push(Seg::Key(key));
            match (ty, v) {
                (Some("lambda"), _) => {
                    handled.push(key);
                    self.finding(
                        "lambda_bytecode",
                        format!(
                            "Lambda layer {key} stored as Python bytecode ({type_key}=\"lambda\"); \
                             tf-keras runs it while loading, even in safe mode"
                        ),
                    );
                }
                (Some("function"), Value::String(name)) => {
                    handled.push(key);
                    let module = str_of(c, module_key);
                    self.reference(
                        Kind::Function,
                        Form::LambdaFunction,
                        module,
                        "function",
                        None,
                        name,
                    );
                }
                (Some("raw"), _) => handled.push(key),
                (None, Value::Array(items))
                    if key != "output_shape" && items.first().is_some_and(Value::is_string) =>
                {
                    handled.push(key);
                    self.finding(
                        "lambda_bytecode",
                        format!(
                            "Lambda layer {key} stored as a code tuple (base64 bytecode, \
                             defaults, closure)"
                        ),
                    );
                }
                _ => {}
            }
            self.path.pop();
        }
    }
}

fn is_marker(cn: &str, map: &Map<String, Value>) -> bool {
    MARKERS.contains(&cn) || (LEGACY_MARKERS.contains(&cn) && !map.contains_key("config"))
}
