#![no_main]

// The check is shared with tests/fuzz_regressions.rs: see tests/fuzz_checks.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = vigil_tests::fuzz_checks::runbooks_yaml(data);
});
