#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ocitool_fuzz::graph_roles(data);
});
