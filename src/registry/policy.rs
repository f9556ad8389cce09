//! What a config may reference: the Keras built-in tables, the Keras 2 → Keras 3 module map, and
//! the safe-mode policy (which modules, functions and layers a file may never name).
//!
//! The policy is an allow-list for *code paths*: a file may name (a) Keras classes by module or
//! by a name in [`builtins.json`](../builtins.json), (b) Keras modeling functions (activations,
//! losses, metrics, initializers, regularizers, constraints, optimizers, ops), (c) objects the
//! user registered or passed. Everything that would make a loader run code from the file —
//! serialized bytecode, modules outside Keras that hold system facilities, Keras's non-modeling
//! utilities — is refused. A name outside all of these that is not dangerous is a *missing
//! custom object*, not an attack: no loader would import it, it simply cannot be resolved.

use std::collections::HashSet;
use std::sync::OnceLock;

use serde::Deserialize;

/// The generated table (see `generate_builtins.py`).
#[derive(Deserialize)]
struct Table {
    names: Vec<String>,
    registered: Vec<String>,
}

struct Tables {
    sorted: Vec<String>,
    names: HashSet<String>,
    lower: HashSet<String>,
    registered: HashSet<String>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        // The file is part of the source tree; a parse failure is a build defect caught by tests.
        let t: Table = serde_json::from_str(include_str!("builtins.json")).unwrap_or(Table {
            names: Vec::new(),
            registered: Vec::new(),
        });
        Tables {
            sorted: t.names.clone(),
            lower: t.names.iter().map(|n| n.to_lowercase()).collect(),
            names: t.names.into_iter().collect(),
            registered: t.registered.into_iter().collect(),
        }
    })
}

/// The names of the built-in table, sorted (candidates for "did you mean").
pub fn builtin_names() -> &'static [String] {
    &tables().sorted
}

/// Whether `name` is a class, function or string shortcut Keras 3 or tf-keras resolves without
/// custom objects (`Dense`, `relu`, `mse`, `glorot_uniform`, tf-keras's `Custom>Adam`, …).
/// Strings are compared exactly, then case-insensitively (Keras lower-cases some shortcuts).
pub fn is_builtin_name(name: &str) -> bool {
    let t = tables();
    t.names.contains(name) || t.registered.contains(name) || t.lower.contains(&name.to_lowercase())
}

/// Top-level packages whose modules Keras itself imports while loading (spec §5.3 step 4d), plus
/// tf-keras and the TF-bundled Keras.
const KERAS_PACKAGES: [&str; 6] = [
    "keras",
    "tf_keras",
    "keras_hub",
    "keras_cv",
    "keras_nlp",
    "keras_core",
];

/// Whether `module` belongs to a Keras package (`keras`, `keras.src.models.functional`,
/// `tf_keras.src.engine.functional`, `keras_hub.models`, `tensorflow.keras`, …).
pub fn is_keras_module(module: &str) -> bool {
    let top = module.split('.').next().unwrap_or("");
    KERAS_PACKAGES.contains(&top)
        || module == "tensorflow.keras"
        || module.starts_with("tensorflow.keras.")
        || module.starts_with("tensorflow.python.keras")
}

/// A Keras module path without its package and `src.` prefix: `keras.src.layers.core.dense`
/// → `layers.core.dense`, `tf_keras.engine.functional` → `engine.functional`.
pub fn keras_submodule(module: &str) -> &str {
    let rest = ["tensorflow.python.keras", "tensorflow.keras"]
        .iter()
        .find_map(|p| module.strip_prefix(p))
        .or_else(|| {
            KERAS_PACKAGES.iter().find_map(|p| {
                module
                    .strip_prefix(p)
                    .filter(|r| r.is_empty() || r.starts_with('.'))
            })
        })
        .unwrap_or(module);
    let rest = rest.strip_prefix('.').unwrap_or(rest);
    rest.strip_prefix("src.")
        .or_else(|| (rest == "src").then_some(""))
        .unwrap_or(rest)
}

/// Keras 2 / tf-keras submodules and where Keras 3 keeps the same classes.
const KERAS2_TO_KERAS3: [(&str, &str); 14] = [
    ("engine.functional", "keras.src.models.functional"),
    ("engine.sequential", "keras.src.models.sequential"),
    ("engine.training", "keras.src.models.model"),
    ("engine.training_v1", "keras.src.models.model"),
    ("engine.input_layer", "keras.src.layers.core.input_layer"),
    ("engine.base_layer", "keras.src.layers.layer"),
    ("engine.base_layer_v1", "keras.src.layers.layer"),
    (
        "engine.keras_tensor",
        "keras.src.backend.common.keras_tensor",
    ),
    ("engine.compile_utils", "keras.src.trainers.compile_utils"),
    (
        "mixed_precision.policy",
        "keras.src.dtype_policies.dtype_policy",
    ),
    ("optimizers.optimizer_v2", "keras.src.optimizers"),
    ("optimizers.optimizer_experimental", "keras.src.optimizers"),
    ("optimizers.legacy", "keras.src.optimizers"),
    ("saving.legacy.saved_model", "keras.src.legacy.saving"),
];

/// The Keras 3 module for a Keras 2 module path (`keras.engine.functional`,
/// `tf_keras.src.engine.functional` → `keras.src.models.functional`); `None` when the path is not
/// a Keras 2 one or Keras 3 has no counterpart.
pub fn keras3_module(module: &str) -> Option<&'static str> {
    if !is_keras_module(module) {
        return None;
    }
    let sub = keras_submodule(module);
    KERAS2_TO_KERAS3.iter().find_map(|(k2, k3)| {
        (sub == *k2 || sub.strip_prefix(k2).is_some_and(|r| r.starts_with('.'))).then_some(*k3)
    })
}

/// Keras namespaces whose *functions* a model config may name (spec §5.3 step 4c and the public
/// modeling API). Functions anywhere else in Keras (`keras.utils.get_file`,
/// `keras.config.enable_unsafe_deserialization`, `keras.models.load_model`) are refused.
const MODELING_FUNCTION_NAMESPACES: [&str; 12] = [
    "activations",
    "losses",
    "metrics",
    "initializers",
    "regularizers",
    "constraints",
    "optimizers",
    "ops",
    "random",
    "backend",
    "layers",
    "applications",
];

/// Names Keras 3 refuses to deserialize (`NON_MODELING_APIS`, CVE-2025-8747 / CVE-2025-9906),
/// matched by the last path component in any Keras module, plus neighbours of the same kind.
const NON_MODELING_NAMES: [&str; 30] = [
    "enable_unsafe_deserialization",
    "clear_session",
    "load_model",
    "save_model",
    "model_from_json",
    "model_from_yaml",
    "model_from_config",
    "load_weights",
    "save_weights",
    "deserialize_keras_object",
    "serialize_keras_object",
    "register_keras_serializable",
    "get_file",
    "load_img",
    "save_img",
    "image_dataset_from_directory",
    "text_dataset_from_directory",
    "audio_dataset_from_directory",
    "timeseries_dataset_from_array",
    "plot_model",
    "model_to_dot",
    "set_random_seed",
    "set_floatx",
    "set_epsilon",
    "set_image_data_format",
    "set_backend",
    "enable_interactive_logging",
    "disable_interactive_logging",
    "set_dtype_policy",
    "set_global_policy",
];

/// Keras layers that reach outside the model file when built (spec §4.7): Keras refuses them in
/// safe mode too.
const UNSAFE_LAYERS: [(&str, &str); 2] = [
    (
        "TFSMLayer",
        "loads an external SavedModel given by path in the config",
    ),
    ("TorchModuleWrapper", "unpickles a serialized torch module"),
];

/// Layers whose `vocabulary` (etc.) may be a file path read when the layer is built.
pub const FILE_READING_LAYERS: [&str; 5] = [
    "StringLookup",
    "IntegerLookup",
    "IndexLookup",
    "TextVectorization",
    "Hashing",
];

/// Top-level modules that hold system facilities or load code. A config naming one is hostile:
/// a real custom object never lives there. (Other unknown modules are just unresolved user
/// code: no loader imports them, so they are reported as missing custom objects.)
const DANGEROUS_MODULES: [&str; 75] = [
    "os",
    "posix",
    "nt",
    "posixpath",
    "ntpath",
    "subprocess",
    "sys",
    "importlib",
    "imp",
    "zipimport",
    "pkgutil",
    "runpy",
    "marshal",
    "pickle",
    "_pickle",
    "cPickle",
    "copyreg",
    "shelve",
    "dbm",
    "shutil",
    "socket",
    "ssl",
    "select",
    "selectors",
    "asyncio",
    "ctypes",
    "cffi",
    "code",
    "codeop",
    "pty",
    "tty",
    "fcntl",
    "resource",
    "mmap",
    "signal",
    "webbrowser",
    "multiprocessing",
    "threading",
    "_thread",
    "concurrent",
    "tempfile",
    "io",
    "_io",
    "pathlib",
    "glob",
    "fileinput",
    "tarfile",
    "zipfile",
    "sqlite3",
    "urllib",
    "http",
    "ftplib",
    "telnetlib",
    "smtplib",
    "xmlrpc",
    "platform",
    "inspect",
    "types",
    "operator",
    "functools",
    "gc",
    "atexit",
    "site",
    "sysconfig",
    "logging",
    "pdb",
    "bdb",
    "commands",
    "popen2",
    "__builtin__",
    "builtins",
    "timeit",
    "trace",
    "cProfile",
    "profile",
];

/// Third-party top-level modules that hold code-loading or system facilities.
const DANGEROUS_THIRD_PARTY: [&str; 17] = [
    "dill",
    "cloudpickle",
    "joblib",
    "torch",
    "numpy",
    "pandas",
    "yaml",
    "requests",
    "urllib3",
    "IPython",
    "setuptools",
    "pip",
    "pkg_resources",
    "jax",
    "scipy",
    "h5py",
    "tensorflow",
];

/// Python builtins a config must never name as a function.
const DANGEROUS_BUILTINS: [&str; 22] = [
    "eval",
    "exec",
    "execfile",
    "compile",
    "__import__",
    "open",
    "input",
    "breakpoint",
    "getattr",
    "setattr",
    "delattr",
    "globals",
    "locals",
    "vars",
    "exit",
    "quit",
    "help",
    "memoryview",
    "print",
    "type",
    "object",
    "super",
];

/// Callables that run commands or load code, whatever module a file claims they come from.
const DANGEROUS_CALLABLES: [&str; 28] = [
    "system",
    "popen",
    "Popen",
    "spawnl",
    "spawnlp",
    "spawnv",
    "spawnvp",
    "execl",
    "execle",
    "execlp",
    "execv",
    "execve",
    "execvp",
    "posix_spawn",
    "check_output",
    "check_call",
    "getoutput",
    "getstatusoutput",
    "loads",
    "load",
    "func_load",
    "import_module",
    "rmtree",
    "remove",
    "unlink",
    "kill",
    "run_path",
    "run_module",
];

/// TF namespaces a tf-keras `TFOpLambda` may call (`"function": "math.multiply"`). Anything else
/// (`io.write_file`, `raw_ops.*`, `py_function`, `compat.v1.py_func`, `saved_model.load`, …) is
/// refused: tf-keras calls the named TF API while rebuilding the model.
const TF_OP_NAMESPACES: [&str; 13] = [
    "math",
    "nn",
    "linalg",
    "__operators__",
    "signal",
    "image",
    "random",
    "bitwise",
    "sparse",
    "strings",
    "ragged",
    "dtypes",
    "experimental.numpy",
];

/// Top-level TF functions a `TFOpLambda` may not call.
const TF_OP_DENIED: [&str; 12] = [
    "py_function",
    "numpy_function",
    "py_func",
    "print",
    "load_op_library",
    "load_library",
    "function",
    "saved_model",
    "io",
    "raw_ops",
    "compat",
    "debugging",
];

/// Why a reference is refused, or `None` when it is allowed (or merely unknown).
///
/// `module` is the object dict's `module`; `name` the class name, or the function name for
/// function references; `function` tells which.
pub fn unsafe_reason(module: Option<&str>, name: &str, function: bool) -> Option<String> {
    let bare = super::names::bare_name(name);
    let has_package = bare.len() != name.len();
    if let Some(module) = module {
        let top = module.split('.').next().unwrap_or("");
        if is_keras_module(module) {
            let last = bare.rsplit('.').next().unwrap_or(bare);
            if NON_MODELING_NAMES.contains(&last) {
                return Some(format!(
                    "{module}.{bare} is a Keras utility, not a modeling object: a model config \
                     may not call it"
                ));
            }
            // Keras itself (not keras_hub/keras_cv/keras_nlp, whose functions live in their
            // model packages): functions only from the modeling namespaces.
            let core = matches!(top, "keras" | "tf_keras" | "keras_core" | "tensorflow");
            if function && core {
                let sub = keras_submodule(module);
                let ns = sub.split('.').next().unwrap_or("");
                if !sub.is_empty() && !MODELING_FUNCTION_NAMESPACES.contains(&ns) {
                    return Some(format!(
                        "function {module}.{bare} is outside Keras's modeling namespaces \
                         (activations, losses, metrics, initializers, regularizers, constraints, \
                         optimizers, ops)"
                    ));
                }
            }
            return None;
        }
        if top == "builtins" || top == "__builtin__" {
            if !function {
                return Some(format!(
                    "class {module}.{bare} is a Python builtin, not a Keras object"
                ));
            }
            if DANGEROUS_BUILTINS.contains(&bare) || DANGEROUS_CALLABLES.contains(&bare) {
                return Some(format!(
                    "Python builtin {bare}() would run code from the file"
                ));
            }
            return None;
        }
        if DANGEROUS_MODULES.contains(&top) || DANGEROUS_THIRD_PARTY.contains(&top) {
            return Some(format!(
                "{module}.{bare} is outside Keras and the registry (module {top:?} gives access \
                 to the system or loads code)"
            ));
        }
    }
    if function
        && !has_package
        && (DANGEROUS_BUILTINS.contains(&bare) || DANGEROUS_CALLABLES.contains(&bare))
    {
        return Some(format!("function {bare:?} runs commands or loads code"));
    }
    None
}

/// Why a class is refused as a layer, by name (`TFSMLayer`, `TorchModuleWrapper`).
pub fn unsafe_layer(class_name: &str) -> Option<&'static str> {
    let bare = super::names::bare_name(class_name);
    if bare.len() != class_name.len() {
        return None; // a registered custom class of the same name is the user's own code
    }
    UNSAFE_LAYERS
        .iter()
        .find(|(n, _)| *n == bare)
        .map(|(_, why)| *why)
}

/// Why a tf-keras `TFOpLambda` function name is refused.
pub fn unsafe_tf_op(function: &str) -> Option<String> {
    let f = function.strip_prefix("tf.").unwrap_or(function);
    let allowed_ns = TF_OP_NAMESPACES
        .iter()
        .any(|ns| f.strip_prefix(ns).is_some_and(|r| r.starts_with('.')));
    let top = f.split('.').next().unwrap_or("");
    let ok = if f.contains('.') {
        allowed_ns
    } else {
        !TF_OP_DENIED.contains(&top) && !DANGEROUS_CALLABLES.contains(&top)
    };
    (!ok).then(|| {
        format!(
            "TFOpLambda calls tf.{f}, which is not a math/nn/linalg/array operation (tf-keras \
             calls it while rebuilding the model)"
        )
    })
}
