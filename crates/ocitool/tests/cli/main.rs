//! Integration tests of the `ocitool` binary: every test works in its own temporary
//! directory on a copy of a fixture from `testdata/`.

mod util;

mod archive_read;
mod archive_trust;
mod blob;
mod concurrency;
mod convert;
mod crash;
mod dialects;
mod escaping;
mod fixtures_up_to_date;
mod gc;
mod hostile;
mod import_export;
mod init;
mod inspect;
mod interop;
mod json_schemas;
mod lifecycle;
mod ls;
mod names;
mod output_files;
mod registry;
mod releases;
mod reports;
mod scale;
mod selecting;
mod serve;
mod tag;
mod transfer;
mod untag;
mod usage;
mod verify;
