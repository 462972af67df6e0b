#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ocitool_fuzz::archive_structured(data);
});
