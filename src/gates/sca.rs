//! The sca gate. TODO(#2): being built; this placeholder errors so the run fails closed.

use async_trait::async_trait;
use serde::Deserialize;

use crate::gate::{Gate, GateContext, GateError, GateOutput};

/// `[gates.sca]` in the policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ScaOptions {}

#[derive(Debug)]
pub struct Sca;

#[async_trait]
impl Gate for Sca {
    fn id(&self) -> &'static str {
        "sca"
    }

    fn description(&self) -> &'static str {
        "sca"
    }

    fn docs(&self) -> &'static str {
        "docs/gates/sca.md"
    }

    async fn run(&self, _ctx: &GateContext) -> Result<GateOutput, GateError> {
        Err(GateError::Other {
            message: "the sca gate is not built yet".to_owned(),
        })
    }
}
