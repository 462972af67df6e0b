//! Integration tests of the `ocitool` binary: every test works in its own temporary
//! directory on a copy of a fixture from `testdata/`.

mod util;

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
mod lifecycle;
mod ls;
mod names;
mod output_files;
mod registry;
mod reports;
mod scale;
mod serve;
mod tag;
mod transfer;
mod untag;
mod verify;
