//! Portcullis: a supply-chain security pipeline for Rust repositories.
//!
//! One engine runs ordered gates over a repository and turns their findings
//! into one verdict plus the reports people and GitHub read:
//!
//! - [`finding`]: the one [`Finding`](finding::Finding) type every gate emits;
//! - [`gate`]: the [`Gate`](gate::Gate) trait and the context a gate receives;
//! - [`gates`]: every gate and the registry that lists them;
//! - [`policy`]: stages, thresholds, per-gate options and waivers;
//! - [`pipeline`]: runs the stages and decides the verdict;
//! - [`report`]: terminal, JSON, SARIF, Markdown, JUnit and GitHub output,
//!   each a pure function of the pipeline result.

pub mod finding;
pub mod gate;
pub mod gates;
pub mod pipeline;
pub mod policy;
pub mod process;
pub mod repo;
pub mod report;
