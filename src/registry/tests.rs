//! Registry tests: names and collisions, the walk over real Keras 3 / tf-keras configs
//! (`tests/fixtures/configs/`, written by `tests/fixtures/generate_configs.py`), resolution, and
//! the safe-mode policy on hand-written hostile configs.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::*;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/configs")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_config(&text).unwrap()
}

fn registered(names: &[&str]) -> Available {
    Available {
        registered: names.iter().map(|s| s.to_string()).collect(),
        ..Available::default()
    }
}

fn find<'a>(refs: &'a [Reference], name: &str) -> &'a Reference {
    refs.iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no reference {name}: {refs:#?}"))
}

fn missing_names(config: &Value, available: &Available) -> Vec<String> {
    match preflight(config, available, true) {
        Err(Error::MissingCustomObject { names, .. }) => names,
        Ok(_) => Vec::new(),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn unsafe_msg(config: &Value) -> String {
    match preflight(config, &Available::default(), true) {
        Err(Error::Unsafe { msg, .. }) => msg,
        other => panic!("expected Unsafe, got {other:?}"),
    }
}

fn codes(config: &Value) -> Vec<(String, &'static str)> {
    scan(config).into_iter().map(|f| (f.path, f.code)).collect()
}

// ---- names ------------------------------------------------------------------------------------

#[test]
fn registry_parse_and_make_names() {
    let p = parse_registered_name("Course>ScaledDense");
    assert_eq!(p.package, Some("Course"));
    assert_eq!(p.name, "ScaledDense");
    let bare = parse_registered_name("ScaledDense");
    assert_eq!((bare.package, bare.name), (None, "ScaledDense"));
    assert_eq!(bare_name("a>b>c"), "b>c");
    assert_eq!(
        make_registered_name("Course", "ScaledDense").unwrap(),
        "Course>ScaledDense"
    );
    for (pkg, name) in [
        ("", "X"),
        ("P", ""),
        ("a>b", "X"),
        ("P", "x>y"),
        (" P", "X"),
    ] {
        assert!(make_registered_name(pkg, name).is_err(), "{pkg:?} {name:?}");
    }
}

#[test]
fn registry_collision_rules() {
    let mut r = Registry::new();
    assert_eq!(
        r.register("Course>ScaledDense", 1, "m.ScaledDense")
            .unwrap(),
        Registration::Added
    );
    assert_eq!(
        r.register("Course>ScaledDense", 1, "m.ScaledDense")
            .unwrap(),
        Registration::Unchanged
    );
    // A different object under the taken name: refused, naming the holder.
    let err = r
        .register("Course>ScaledDense", 2, "other.Thing")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Course>ScaledDense") && err.contains("m.ScaledDense"),
        "{err}"
    );
    // The same definition executed again (notebook cell): replaces.
    assert_eq!(
        r.register("Course>ScaledDense", 3, "m.ScaledDense")
            .unwrap(),
        Registration::Replaced { previous: 1 }
    );
    assert_eq!(r.get("Course>ScaledDense").unwrap().id, 3);
    // Two classes defined in a function body share a qualified name but are different objects.
    r.register("Course>Local", 4, "t.test_fn.<locals>.Local")
        .unwrap();
    let err = r
        .register("Course>Local", 5, "t.test_fn.<locals>.Local")
        .unwrap_err()
        .to_string();
    assert!(err.contains("Course>Local"), "{err}");
    assert_eq!(r.unregister("Course>Local"), Some(4));
    assert_eq!(r.name_of(1), None);
    assert_eq!(r.name_of(3), Some("Course>ScaledDense"));
    // One object, two names: the latest is its serialization name.
    r.register("Other>Alias", 3, "m.ScaledDense").unwrap();
    assert_eq!(r.name_of(3), Some("Other>Alias"));
    assert_eq!(r.unregister("Other>Alias"), Some(3));
    assert_eq!(r.name_of(3), Some("Course>ScaledDense"));
    assert!(r.register("NoPackage", 9, "").is_err());
    assert_eq!(r.len(), 1);
}

#[test]
fn registry_find_accepts_bare_names() {
    let mut r = Registry::new();
    r.register("Course>ScaledDense", 1, "").unwrap();
    r.register("A>Twin", 2, "").unwrap();
    r.register("B>Twin", 3, "").unwrap();
    assert_eq!(
        r.find("Course>ScaledDense"),
        NameMatch::Found("Course>ScaledDense".into())
    );
    assert_eq!(
        r.find("ScaledDense"),
        NameMatch::Found("Course>ScaledDense".into())
    );
    assert_eq!(
        r.find("Twin"),
        NameMatch::Ambiguous(vec!["A>Twin".into(), "B>Twin".into()])
    );
    assert_eq!(r.find("Other>ScaledDense"), NameMatch::None);
    // custom_objects={"ScaledDense": cls} answers the registered name.
    assert_eq!(
        find_name("Course>ScaledDense", ["ScaledDense"]),
        NameMatch::Found("ScaledDense".into())
    );
}

#[test]
fn registry_suggestions() {
    let cands = ["Course>ScaledDense", "Course>WeightedMSE", "Dense", "relu"];
    assert_eq!(
        suggest("Course>ScaledDence", cands),
        vec!["Course>ScaledDense"]
    );
    assert_eq!(
        suggest("Cours>ScaledDense", cands),
        vec!["Course>ScaledDense"]
    );
    assert_eq!(
        suggest("course>weightedmse", cands),
        vec!["Course>WeightedMSE"]
    );
    assert_eq!(suggest("Dnese", cands), vec!["Dense"]);
    assert!(suggest("Totally>Different", cands).is_empty());
    // The same package ranks first among equally close bare names.
    let twins = [
        "A>ScaledDense",
        "B>ScaledDense",
        "C>ScaledDense",
        "Mine>ScaledDense",
    ];
    assert_eq!(suggest("Mine>ScaledDence", twins)[0], "Mine>ScaledDense");
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(edit_distance("Dnese", "Dense"), 1);
}

// ---- real Keras 3 configs --------------------------------------------------------------------

#[test]
fn registry_keras3_sequential_references() {
    let c = fixture("keras3_sequential.json");
    let refs = references(&c);
    let sd = find(&refs, "Course>ScaledDense");
    assert_eq!(sd.path, "config.layers[1]");
    assert_eq!(sd.layer.as_deref(), Some("my_model/scaled_dense"));
    assert_eq!((sd.kind, sd.form), (Kind::Layer, Form::Object));
    assert_eq!(sd.class_name, "ScaledDense");
    let act = find(&refs, "Course>scaled_relu");
    assert_eq!(act.path, "config.layers[2].config.activation");
    assert_eq!((act.kind, act.form), (Kind::Activation, Form::Function));
    assert_eq!(act.module.as_deref(), Some("builtins"));
    assert_eq!(find(&refs, "L2").kind, Kind::Regularizer);
    assert_eq!(find(&refs, "MaxNorm").kind, Kind::Constraint);
    assert_eq!(find(&refs, "GlorotUniform").kind, Kind::Initializer);
    let loss = find(&refs, "Course>WeightedMSE");
    assert_eq!(
        (loss.path.as_str(), loss.kind),
        ("compile_config.loss", Kind::Loss)
    );
    assert_eq!(loss.layer.as_deref(), Some("my_model"));
    let mae = find(&refs, "mae");
    assert_eq!(
        (mae.kind, mae.form, mae.path.as_str()),
        (Kind::Metric, Form::String, "compile_config.metrics[0]")
    );
    assert_eq!(find(&refs, "Adam").kind, Kind::Optimizer);
    assert_eq!(find(&refs, "Sequential").kind, Kind::Model);
    assert!(scan(&c).is_empty());
}

#[test]
fn registry_keras3_sequential_preflight() {
    let c = fixture("keras3_sequential.json");
    let err = preflight(&c, &Available::default(), true).unwrap_err();
    let Error::MissingCustomObject { names, msg, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        names,
        &[
            "Course>ScaledDense",
            "Course>scaled_relu",
            "Course>WeightedMSE"
        ]
    );
    for needle in [
        "3 custom objects",
        "\"Course>ScaledDense\" (layer) used at config.layers[1] (in \"my_model/scaled_dense\")",
        "\"Course>WeightedMSE\" (loss) used at compile_config.loss",
        "register_serializable",
    ] {
        assert!(msg.contains(needle), "{needle:?} not in:\n{msg}");
    }
    // Registered: everything else is a Keras built-in.
    let ok = preflight(
        &c,
        &registered(&[
            "Course>ScaledDense",
            "Course>scaled_relu",
            "Course>WeightedMSE",
        ]),
        true,
    )
    .unwrap();
    for r in &ok.references {
        if r.reference.name.starts_with("Course>") {
            assert!(matches!(
                &r.resolution,
                Status::Custom {
                    source: Source::Registry,
                    ..
                }
            ));
        } else {
            assert_eq!(r.resolution, Status::Builtin, "{:?}", r.reference);
        }
    }
    // Bare class names in custom_objects answer the registered names.
    let bare = Available {
        custom_objects: vec![
            "ScaledDense".into(),
            "scaled_relu".into(),
            "WeightedMSE".into(),
        ],
        ..Available::default()
    };
    let ok = preflight(&c, &bare, true).unwrap();
    let sd = ok
        .references
        .iter()
        .find(|r| r.reference.name == "Course>ScaledDense")
        .unwrap();
    assert_eq!(
        sd.resolution,
        Status::Custom {
            source: Source::CustomObjects,
            provided: "ScaledDense".into()
        }
    );
    // Lookup order: custom_objects before scopes before the registry.
    let all = Available {
        custom_objects: vec!["WeightedMSE".into()],
        scoped: vec!["Course>WeightedMSE".into(), "Course>ScaledDense".into()],
        registered: vec![
            "Course>WeightedMSE".into(),
            "Course>ScaledDense".into(),
            "Course>scaled_relu".into(),
        ],
        builtins: vec![],
    };
    let ok = preflight(&c, &all, true).unwrap();
    let source = |n: &str| match &ok
        .references
        .iter()
        .find(|r| r.reference.name == n)
        .unwrap()
        .resolution
    {
        Status::Custom { source, .. } => *source,
        other => panic!("{other:?}"),
    };
    assert_eq!(source("Course>WeightedMSE"), Source::CustomObjects);
    assert_eq!(source("Course>ScaledDense"), Source::Scope);
    assert_eq!(source("Course>scaled_relu"), Source::Registry);
}

#[test]
fn registry_keras3_functional_nested() {
    let c = fixture("keras3_functional.json");
    let refs = references(&c);
    let init = find(&refs, "Course>HalfInit");
    assert_eq!(init.path, "config.layers[1].config.layers[1].config.init");
    assert_eq!(init.layer.as_deref(), Some("functional/inner/block"));
    let lstm = find(&refs, "LSTM");
    assert_eq!(lstm.layer.as_deref(), Some("functional/bi/forward_lstm"));
    assert_eq!(find(&refs, "Course>double").kind, Kind::Function);
    assert_eq!(
        find(&refs, "ExponentialDecay").kind,
        Kind::LearningRateSchedule
    );
    assert!(scan(&c).is_empty(), "{:?}", scan(&c));
    assert_eq!(
        missing_names(&c, &Available::default()),
        [
            "Course>Block",
            "Course>HalfInit",
            "Course>double",
            "Unregistered",
            "plain_tanh"
        ]
    );
    // Keras internals (keras.src.ops.numpy Add), schedules, wrappers: built-ins.
    let avail = Available {
        custom_objects: vec!["Unregistered".into(), "plain_tanh".into()],
        registered: vec![
            "Course>Block".into(),
            "Course>HalfInit".into(),
            "Course>double".into(),
        ],
        ..Available::default()
    };
    assert!(missing_names(&c, &avail).is_empty());
    // A missing object deep inside: one name, with its path and the closest registered name.
    let almost = registered(&["Course>Block", "Course>HalfInt", "Course>double"]);
    let err = preflight(
        &c,
        &Available {
            custom_objects: avail.custom_objects.clone(),
            ..almost
        },
        true,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("\"Course>HalfInit\" (object) used at config.layers[1].config.layers[1].config.init (in \"functional/inner/block\")"), "{msg}");
    assert!(msg.contains("did you mean \"Course>HalfInt\"?"), "{msg}");
}

#[test]
fn registry_keras3_lambda_is_refused() {
    let c = fixture("keras3_lambda.json");
    assert_eq!(
        codes(&c),
        [(
            "config.layers[1].config.function".to_string(),
            "lambda_bytecode"
        )]
    );
    let msg = unsafe_msg(&c);
    assert!(
        msg.contains("at config.layers[1].config.function (in \"with_lambda/times_two\")"),
        "{msg}"
    );
    // safe_mode=False: allowed, findings handed back for a warning.
    let ok = preflight(&c, &Available::default(), false).unwrap();
    assert_eq!(ok.findings.len(), 1);
}

#[test]
fn registry_keras3_legacy_h5() {
    let c = fixture("keras3_legacy_h5.json");
    let refs = references(&c);
    assert!(refs.iter().any(|r| r.path.starts_with("model_config.")));
    assert!(refs.iter().any(|r| r.path.starts_with("training_config.")));
    assert_eq!(
        missing_names(&c, &Available::default()),
        [
            "Course>ScaledDense",
            "Course>scaled_relu",
            "Course>WeightedMSE"
        ]
    );
    assert!(missing_names(
        &c,
        &registered(&[
            "Course>ScaledDense",
            "Course>scaled_relu",
            "Course>WeightedMSE"
        ])
    )
    .is_empty());
}

// ---- real tf-keras configs -------------------------------------------------------------------

#[test]
fn registry_tfkeras_h5() {
    let c = fixture("tfkeras_h5.json");
    let refs = references(&c);
    let sd = find(&refs, "Course>ScaledDense");
    assert_eq!((sd.form, sd.kind), (Form::Legacy, Kind::Layer));
    assert_eq!(sd.path, "model_config.config.layers[1]");
    assert_eq!(sd.layer.as_deref(), Some("tk_model/scaled_dense"));
    assert_eq!(find(&refs, "Custom>Adam").kind, Kind::Optimizer);
    assert_eq!(find(&refs, "mean_absolute_error").kind, Kind::Function);
    // The bytecode Lambda is the only finding; tf.math ops and slicing are allowed.
    assert_eq!(
        codes(&c),
        [(
            "model_config.config.layers[3].config.function".to_string(),
            "lambda_bytecode"
        )]
    );
    let ok = preflight(
        &c,
        &registered(&[
            "Course>ScaledDense",
            "Course>scaled_relu",
            "Course>WeightedMSE",
        ]),
        false,
    )
    .unwrap();
    for r in &ok.references {
        assert!(
            !matches!(r.resolution, Status::Missing { .. } | Status::Unsafe { .. }),
            "{r:?}"
        );
    }
    let safe = Value::Object(c.as_object().unwrap().clone());
    let mut without_lambda = safe.clone();
    without_lambda["model_config"]["config"]["layers"]
        .as_array_mut()
        .unwrap()
        .remove(3);
    assert_eq!(
        missing_names(&without_lambda, &Available::default()),
        [
            "Course>ScaledDense",
            "Course>scaled_relu",
            "Course>WeightedMSE"
        ]
    );
}

#[test]
fn registry_tfkeras_keras_metadata_and_keras_zip() {
    let meta = fixture("tfkeras_keras_metadata.json");
    let found = codes(&meta);
    assert!(
        found.iter().all(|(_, c)| *c == "lambda_bytecode"),
        "{found:?}"
    );
    // The Lambda is found in the root's model_config and in its own layer node.
    assert!(
        found
            .iter()
            .any(|(p, _)| p.starts_with("root.model_config.")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|(p, _)| p.starts_with("[\"root.layer-3\"]")),
        "{found:?}"
    );
    let zip = fixture("tfkeras_keras.json");
    let refs = references(&zip);
    let top = &refs[0];
    assert_eq!(
        top.module.as_deref(),
        Some("tf_keras.src.engine.functional")
    );
    assert_eq!(
        top.keras3_module.as_deref(),
        Some("keras.src.models.functional")
    );
    assert_eq!(codes(&zip).len(), 1);
}

#[test]
fn registry_real_keras_metadata_pb() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/savedmodel/tf_keras_save/keras_metadata.pb");
    if !path.exists() {
        return; // fixture written only where tf-keras was available
    }
    let nodes = crate::savedmodel::read_keras_metadata(&path).unwrap();
    let doc = keras_metadata_document(&nodes).unwrap();
    assert!(doc.get("root").is_some());
    assert!(scan(&doc).is_empty());
    let ok = preflight(&doc, &Available::default(), true).unwrap();
    assert!(
        ok.references
            .iter()
            .all(|r| r.resolution == Status::Builtin),
        "{:#?}",
        ok.references
    );
}

// ---- resolution details ----------------------------------------------------------------------

#[test]
fn registry_public_keras_objects_ignore_custom_objects() {
    let c = json!({"module": "keras.layers", "class_name": "Dense", "config": {"name": "d"}, "registered_name": null});
    let avail = Available {
        custom_objects: vec!["Dense".into()],
        ..Available::default()
    };
    assert_eq!(resolve(&c, &avail)[0].resolution, Status::Builtin);
    // Legacy dicts are looked up by class name, custom objects first.
    let legacy = json!({"class_name": "Dense", "config": {"name": "d"}});
    assert!(matches!(
        resolve(&legacy, &avail)[0].resolution,
        Status::Custom { .. }
    ));
    assert_eq!(
        resolve(&legacy, &Available::default())[0].resolution,
        Status::Builtin
    );
}

#[test]
fn registry_ambiguous_bare_name() {
    let c = json!({"class_name": "Twin", "config": {"name": "t", "trainable": true}});
    let r = &resolve(&c, &registered(&["A>Twin", "B>Twin"]))[0];
    assert_eq!(
        r.resolution,
        Status::Missing {
            suggestions: vec![],
            ambiguous: vec!["A>Twin".into(), "B>Twin".into()]
        }
    );
    let msg = preflight(&c, &registered(&["A>Twin", "B>Twin"]), true)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("ambiguous"), "{msg}");
    // A single packaged name answers the bare one (Keras <= 3.6 wrote bare function names).
    assert!(matches!(
        resolve(&c, &registered(&["A>Twin"]))[0].resolution,
        Status::Custom { .. }
    ));
}

#[test]
fn registry_extra_builtins_from_the_installed_keras() {
    let c = json!({"class_name": "BrandNewLayer", "config": {"name": "n", "trainable": true}});
    assert_eq!(missing_names(&c, &Available::default()), ["BrandNewLayer"]);
    let avail = Available {
        builtins: vec!["BrandNewLayer".into()],
        ..Available::default()
    };
    assert!(missing_names(&c, &avail).is_empty());
}

#[test]
fn registry_keras2_module_paths() {
    use policy::keras3_module;
    assert_eq!(
        keras3_module("keras.engine.functional"),
        Some("keras.src.models.functional")
    );
    assert_eq!(
        keras3_module("keras.src.engine.sequential"),
        Some("keras.src.models.sequential")
    );
    assert_eq!(
        keras3_module("tf_keras.src.engine.training"),
        Some("keras.src.models.model")
    );
    assert_eq!(
        keras3_module("tensorflow.python.keras.engine.input_layer"),
        Some("keras.src.layers.core.input_layer")
    );
    assert_eq!(
        keras3_module("keras.optimizers.optimizer_v2.adam"),
        Some("keras.src.optimizers")
    );
    assert_eq!(keras3_module("keras.layers"), None);
    assert_eq!(keras3_module("mypkg.engine.functional"), None);
    let c = json!({"module": "keras.engine.functional", "class_name": "Functional", "config": {"layers": []}, "registered_name": "Functional"});
    assert_eq!(
        resolve(&c, &Available::default())[0].resolution,
        Status::Builtin
    );
}

#[test]
fn registry_parse_config_tolerates_python_json() {
    let v = parse_config(r#"{"a": NaN, "b": [Infinity, -Infinity], "c": "NaN stays"}"#).unwrap();
    assert_eq!(v, json!({"a": null, "b": [null, null], "c": "NaN stays"}));
    assert!(parse_config("{").is_err());
}

// ---- the safe-mode policy on hostile configs -------------------------------------------------

fn model_with(layer: Value) -> Value {
    json!({"module": "keras", "class_name": "Sequential", "registered_name": null,
           "config": {"name": "m", "layers": [
               {"module": "keras.layers", "class_name": "InputLayer", "registered_name": null,
                "config": {"batch_shape": [null, 3], "name": "in"}},
               layer]}})
}

fn dense_with_activation(activation: Value) -> Value {
    model_with(
        json!({"module": "keras.layers", "class_name": "Dense", "registered_name": null,
                      "config": {"name": "d", "trainable": true, "units": 2, "activation": activation}}),
    )
}

#[test]
fn registry_refuses_system_references() {
    let cases = [
        json!({"module": "os", "class_name": "function", "config": "system", "registered_name": "function"}),
        json!({"module": "posix", "class_name": "function", "config": "system", "registered_name": "function"}),
        json!({"module": "subprocess", "class_name": "function", "config": "check_output", "registered_name": "function"}),
        json!({"module": "builtins", "class_name": "function", "config": "eval", "registered_name": "function"}),
        json!({"module": "builtins", "class_name": "function", "config": "exec", "registered_name": "function"}),
        json!({"module": "keras.config", "class_name": "function", "config": "enable_unsafe_deserialization", "registered_name": "function"}),
        json!({"module": "keras.utils", "class_name": "function", "config": "get_file", "registered_name": "function"}),
        json!({"module": "keras.src.utils.file_utils", "class_name": "function", "config": "get_file", "registered_name": "function"}),
        json!({"module": "keras.saving", "class_name": "function", "config": "load_model", "registered_name": "function"}),
        json!({"module": "keras.utils", "class_name": "function", "config": "some_new_utility", "registered_name": "function"}),
        json!({"module": "tf_keras.models", "class_name": "function", "config": "load_model", "registered_name": "function"}),
        json!({"class_name": "function", "config": "system", "module": null}),
        json!("eval"),
    ];
    for activation in cases {
        let c = dense_with_activation(activation.clone());
        let msg = unsafe_msg(&c);
        assert!(
            msg.contains("at config.layers[1].config.activation (in \"m/d\")"),
            "{activation}: {msg}"
        );
        // Registering things does not change the verdict.
        assert!(matches!(
            preflight(&c, &registered(&["Course>system"]), true),
            Err(Error::Unsafe { .. })
        ));
    }
    let popen = model_with(
        json!({"module": "subprocess", "class_name": "Popen", "registered_name": null,
                                  "config": {"args": ["touch", "/tmp/x"]}}),
    );
    assert!(unsafe_msg(&popen).contains("at config.layers[1] (in \"m/Popen\"): subprocess.Popen"));
    let import = model_with(
        json!({"module": "builtins", "class_name": "__import__", "config": {"name": "os"}}),
    );
    assert!(unsafe_msg(&import).contains("Python builtin"));
}

#[test]
fn registry_allows_modeling_functions_and_unknown_user_modules() {
    for activation in [
        json!({"module": "builtins", "class_name": "function", "config": "relu", "registered_name": "function"}),
        json!({"module": "keras.activations", "class_name": "function", "config": "gelu", "registered_name": "function"}),
        json!({"module": "keras.src.ops.nn", "class_name": "function", "config": "silu", "registered_name": "function"}),
        json!("relu"),
        json!("Course>scaled_relu"),
        json!({"module": "keras_hub.src.models.gemma.gemma_backbone", "class_name": "function", "config": "gemma_kernel_initializer", "registered_name": "function"}),
    ] {
        assert!(
            scan(&dense_with_activation(activation.clone())).is_empty(),
            "{activation}"
        );
    }
    // User code in an unknown module is missing, not unsafe: no loader imports it.
    let c = model_with(
        json!({"module": "mypkg.layers", "class_name": "Fancy", "registered_name": "mypkg>Fancy",
                              "config": {"name": "f", "trainable": true}}),
    );
    assert!(scan(&c).is_empty());
    assert_eq!(missing_names(&c, &Available::default()), ["mypkg>Fancy"]);
    assert!(missing_names(
        &c,
        &Available {
            custom_objects: vec!["Fancy".into()],
            ..Available::default()
        }
    )
    .is_empty());
}

#[test]
fn registry_refuses_lambda_payloads_everywhere() {
    let payload =
        json!({"class_name": "__lambda__", "config": {"value": ["4wEAAAAA", null, null]}});
    // As an activation.
    assert_eq!(
        codes(&dense_with_activation(payload.clone())),
        [(
            "config.layers[1].config.activation".into(),
            "lambda_bytecode"
        )]
    );
    // Hidden in a Functional node's call kwargs.
    let node = json!({"module": "keras", "class_name": "Functional", "registered_name": "Functional",
        "config": {"name": "f", "layers": [{"module": "keras.layers", "class_name": "Dense", "registered_name": null,
            "config": {"name": "d", "trainable": true}, "name": "d",
            "inbound_nodes": [{"args": [], "kwargs": {"mask": payload.clone()}}]}]}});
    assert_eq!(
        codes(&node),
        [(
            "config.layers[0].inbound_nodes[0].kwargs.mask".into(),
            "lambda_bytecode"
        )]
    );
    // Inside a __slice__ marker.
    let sliced = json!({"outer": {"class_name": "__slice__", "config": {"start": payload.clone(), "stop": null, "step": null}}});
    assert_eq!(
        codes(&sliced),
        [("outer.config.start".into(), "lambda_bytecode")]
    );
    // tf-keras Lambda: bytecode tuple, with and without function_type; output_shape lambdas.
    let tk = json!({"class_name": "Lambda", "config": {"name": "l", "trainable": true,
        "function": ["4wEAAAAA", null, null], "function_type": "lambda", "module": "__main__",
        "output_shape": ["4wEAAAAA", null, null], "output_shape_type": "lambda", "output_shape_module": "__main__"}});
    let found = codes(&tk);
    assert_eq!(
        found,
        [
            ("config.function".into(), "lambda_bytecode"),
            ("config.output_shape".into(), "lambda_bytecode")
        ]
    );
    let untyped = json!({"class_name": "Lambda", "config": {"name": "l", "function": ["4wEAAAAA", null, null]}});
    assert_eq!(codes(&untyped).len(), 1);
    // tf-keras Lambda naming os.system.
    let named = json!({"class_name": "Lambda", "config": {"name": "l", "function": "system", "function_type": "function", "module": "os"}});
    assert_eq!(
        codes(&named),
        [("config.function".into(), "unsafe_reference")]
    );
    // …while a user's function by name is a (missing) custom object.
    let mine = json!({"class_name": "Lambda", "config": {"name": "l", "function": "my_fn", "function_type": "function", "module": "__main__"}});
    assert!(scan(&mine).is_empty());
    assert_eq!(missing_names(&mine, &Available::default()), ["my_fn"]);
}

#[test]
fn registry_refuses_layers_that_reach_outside() {
    let tfsm = model_with(
        json!({"module": "keras.layers", "class_name": "TFSMLayer", "registered_name": null,
                                 "config": {"name": "t", "filepath": "/elsewhere"}}),
    );
    assert_eq!(codes(&tfsm), [("config.layers[1]".into(), "unsafe_layer")]);
    let vocab = model_with(
        json!({"module": "keras.layers", "class_name": "StringLookup", "registered_name": null,
                                  "config": {"name": "s", "vocabulary": "/etc/passwd"}}),
    );
    assert_eq!(
        codes(&vocab),
        [("config.layers[1].config.vocabulary".into(), "file_path")]
    );
    let inline = model_with(
        json!({"module": "keras.layers", "class_name": "StringLookup", "registered_name": null,
                                   "config": {"name": "s", "vocabulary": ["a", "b"]}}),
    );
    assert!(scan(&inline).is_empty());
    for (f, bad) in [
        ("math.multiply", false),
        ("__operators__.getitem", false),
        ("reshape", false),
        ("nn.relu", false),
        ("io.write_file", true),
        ("raw_ops.WriteFile", true),
        ("py_function", true),
        ("compat.v1.py_func", true),
        ("saved_model.load", true),
    ] {
        let c = json!({"class_name": "TFOpLambda", "config": {"name": "op", "function": f}});
        assert_eq!(!scan(&c).is_empty(), bad, "{f}");
    }
}

#[test]
fn registry_unsafe_message_lists_every_finding() {
    let c = json!({"module": "keras", "class_name": "Sequential", "registered_name": null,
        "config": {"name": "m", "layers": [
            {"module": "keras.layers", "class_name": "Dense", "registered_name": null,
             "config": {"name": "a", "trainable": true, "activation": {"module": "os", "class_name": "function", "config": "system"}}},
            {"module": "keras.layers", "class_name": "Lambda", "registered_name": null,
             "config": {"name": "b", "trainable": true, "function": {"class_name": "__lambda__", "config": {"code": "x"}}}}]}});
    let msg = unsafe_msg(&c);
    assert!(msg.contains("2 findings"), "{msg}");
    assert!(
        msg.contains("at config.layers[0].config.activation (in \"m/a\")"),
        "{msg}"
    );
    assert!(
        msg.contains("at config.layers[1].config.function (in \"m/b\")"),
        "{msg}"
    );
    let err = preflight(&c, &Available::default(), true)
        .unwrap_err()
        .in_file("/x/model.keras");
    assert!(
        err.to_string().starts_with("/x/model.keras: refused"),
        "{err}"
    );
}

#[test]
fn registry_builtin_table_is_embedded() {
    assert!(policy::builtin_names().len() > 300);
    for n in [
        "Dense",
        "LSTM",
        "relu",
        "mse",
        "glorot_uniform",
        "Custom>Adam",
        "TFOpLambda",
        "MeanMetricWrapper",
    ] {
        assert!(policy::is_builtin_name(n), "{n}");
    }
    for n in ["load_model", "get", "deserialize", "system", "ScaledDense"] {
        assert!(!policy::is_builtin_name(n), "{n}");
    }
}

#[test]
fn registry_passive_and_shared_objects() {
    // tf-keras marks some objects `__passive_serialization__`; repeated objects share an id.
    let init = json!({"class_name": "Course>HalfInit", "config": {}, "shared_object_id": 7,
                      "__passive_serialization__": true});
    let c = json!({"class_name": "Functional", "config": {"name": "f", "layers": [
        {"class_name": "Dense", "name": "a", "config": {"name": "a", "trainable": true, "kernel_initializer": init.clone()}},
        {"class_name": "Dense", "name": "b", "config": {"name": "b", "trainable": true, "kernel_initializer": init}}]}});
    let refs = references(&c);
    let inits: Vec<_> = refs
        .iter()
        .filter(|r| r.name == "Course>HalfInit")
        .collect();
    assert_eq!(inits.len(), 2);
    assert_eq!(inits[0].kind, Kind::Initializer);
    assert_eq!(inits[1].layer.as_deref(), Some("f/b"));
    let err = preflight(&c, &Available::default(), true).unwrap_err();
    let Error::MissingCustomObject { names, msg, .. } = err else {
        panic!()
    };
    assert_eq!(names, ["Course>HalfInit"]); // one name, both uses
    assert!(
        msg.contains(
            "used at config.layers[0].config.kernel_initializer (in \"f/a\") and 1 other place"
        ),
        "{msg}"
    );
}
