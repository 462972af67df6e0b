pub mod blob;
pub mod gc;
pub mod init;
pub mod inspect;
pub mod ls;
pub mod tag;
pub mod untag;
pub mod verify;
