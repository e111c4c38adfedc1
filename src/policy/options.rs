//! Per-gate options: the `[gates.<id>]` sections of the policy. Each gate
//! owns its options type; this struct only gathers them so that unknown keys
//! are rejected with the line they are on when the policy loads.

use serde::Deserialize;

use crate::gates::{
    lint::LintOptions, sast::SastOptions, sbom::SbomOptions, sca::ScaOptions,
    secrets::SecretsOptions, test::TestOptions,
};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateOptions {
    #[serde(default)]
    pub lint: LintOptions,
    #[serde(default)]
    pub test: TestOptions,
    #[serde(default)]
    pub sast: SastOptions,
    #[serde(default)]
    pub sca: ScaOptions,
    #[serde(default)]
    pub sbom: SbomOptions,
    #[serde(default)]
    pub secrets: SecretsOptions,
}
