//! Converts the built-in tables (`src/rules.yaml`, `src/runbooks.yaml`) to JSON once, at build
//! time. Parsing 60 KB of YAML was over half of a function's CPU time before its first request
//! (BENCHMARKS.md, "Start-up"); the same documents read as JSON take a fraction of that. The YAML
//! files stay the source: they are what people read and edit, and a unit test checks that the
//! JSON loads to exactly what the YAML does. Merge keys are applied here, so the JSON is
//! plain data. A file that does not convert stops the build with the reason.

// A build script reports a broken table by failing the build, with the reason.
#![allow(clippy::panic)]

use std::path::Path;

fn main() {
    for name in ["rules", "runbooks"] {
        let source = format!("src/{name}.yaml");
        println!("cargo:rerun-if-changed={source}");
        let text =
            std::fs::read_to_string(&source).unwrap_or_else(|e| panic!("reading {source}: {e}"));
        let mut doc: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{source} is not YAML: {e}"));
        doc.apply_merge()
            .unwrap_or_else(|e| panic!("{source}: merge keys: {e}"));
        let json = serde_json::to_string(&doc)
            .unwrap_or_else(|e| panic!("{source} does not convert to JSON: {e}"));
        let out = std::env::var_os("OUT_DIR").unwrap_or_else(|| panic!("OUT_DIR is not set"));
        let target = Path::new(&out).join(format!("{name}.json"));
        std::fs::write(&target, json)
            .unwrap_or_else(|e| panic!("writing {}: {e}", target.display()));
    }
}
