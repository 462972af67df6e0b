//! Integration tests of the `ocitool` binary: every test works in its own temporary
//! directory on a copy of a fixture from `testdata/`.

mod util;

mod blob;
mod concurrency;
mod convert;
mod crash;
mod dialects;
mod fixtures_up_to_date;
mod gc;
mod import_export;
mod init;
mod inspect;
mod interop;
mod lifecycle;
mod ls;
mod serve;
mod tag;
mod transfer;
mod untag;
mod verify;
