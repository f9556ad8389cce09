#![no_main]
use kerasafe::checkpoint::object_graph;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(attrs) = object_graph::attributes(data) else {
        return;
    };
    let mut paths: Vec<Vec<String>> = attrs.iter().take(64).map(|a| a.path.clone()).collect();
    paths.push(Vec::new());
    paths.push(vec!["model".into(), "layer_with_weights-0".into()]);
    let _ = object_graph::resolve(data, &paths, "VARIABLE_VALUE");
    for a in attrs.iter().take(64) {
        let _ = object_graph::unescape(&a.name);
    }
});
