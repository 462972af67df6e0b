#![no_main]

#[path = "../src/serve.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::serve_request(data);
});
