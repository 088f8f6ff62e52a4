//! Support code of the example programs: an SLS-compatible receiver
//! ([`sls_receiver`]) used by the tests and by `logtail-sls-receiver`.
#![deny(missing_docs)]

pub mod sls_receiver;
