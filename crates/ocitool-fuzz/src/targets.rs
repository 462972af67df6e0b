/// The names of the fuzz targets, as `cargo fuzz` and `testdata/fuzz-regressions/` know them.
/// Included by the harness (`lib.rs`) and by `cargo xtask fuzz`.
pub const TARGETS: [&str; 7] = [
    "archive_import",
    "oci_archive_unpack",
    "archive_structured",
    "views",
    "names",
    "index_edit",
    "graph_roles",
];
