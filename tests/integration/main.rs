//! Integration tests of the engine: one binary, a module per gate, per
//! report writer and for the CLI. Shared corpora are read in place from
//! `../shared` (or `PORTCULLIS_SHARED`), never copied into the repository.

// A test that skips says why on stderr, so the reason shows in the test log.
#![allow(clippy::print_stderr, clippy::print_stdout)]

mod common;
mod common_schema;
mod lint;
mod policy;
mod reports;
mod sast;
mod sbom;
mod sca;
mod secrets;
mod test_gate;
