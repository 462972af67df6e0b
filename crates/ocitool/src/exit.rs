//! Exit codes (binding: `../shared/CLI.md`).

/// Success; for `verify`, the layout is intact.
pub const OK: i32 = 0;
/// `verify` found problems.
pub const PROBLEMS: i32 = 1;
/// Usage error (clap's own code).
pub const USAGE: i32 = 2;
/// The operation failed.
pub const FAILED: i32 = 3;
/// The layout is locked by another ocitool process and `--no-wait` was given.
pub const LOCKED: i32 = 4;
/// A bug: ocitool panicked. Reported as one `error:` line, never a backtrace.
pub const INTERNAL: i32 = 70;
