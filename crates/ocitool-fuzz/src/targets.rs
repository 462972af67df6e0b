/// The names of the fuzz targets, as `cargo fuzz` and `testdata/fuzz-regressions/` know them.
/// Included by the harness (`lib.rs`) and by `cargo xtask fuzz`. `serve_request` has its own
/// harness (`serve.rs`), replayed by `crates/ocitool-serve/tests/fuzz_regressions.rs`.
pub const TARGETS: [&str; 8] = [
    "archive_import",
    "oci_archive_unpack",
    "archive_structured",
    "views",
    "names",
    "index_edit",
    "graph_roles",
    "serve_request",
];
