//! The sbom gate. TODO(#2): being built; this placeholder errors so the run fails closed.

use async_trait::async_trait;
use serde::Deserialize;

use crate::gate::{Gate, GateContext, GateError, GateOutput};

/// `[gates.sbom]` in the policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SbomOptions {}

#[derive(Debug)]
pub struct Sbom;

#[async_trait]
impl Gate for Sbom {
    fn id(&self) -> &'static str {
        "sbom"
    }

    fn description(&self) -> &'static str {
        "sbom"
    }

    fn docs(&self) -> &'static str {
        "docs/gates/sbom.md"
    }

    async fn run(&self, _ctx: &GateContext) -> Result<GateOutput, GateError> {
        Err(GateError::Other {
            message: "the sbom gate is not built yet".to_owned(),
        })
    }
}
