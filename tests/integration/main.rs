//! Integration tests of the engine: one binary, a module per gate, per
//! report writer and for the CLI. Shared corpora are read in place from
//! `../shared` (or `PORTCULLIS_SHARED`), never copied into the repository.

mod common;
mod common_schema;
mod lint;
mod policy;
mod reports;
mod sbom;
mod sca;
mod test_gate;
mod secrets;
mod sast;
