//! Every gate, one module each, and the registry that lists them.
//!
//! Adding a gate means one new module, one line in [`registry`], its options
//! in [`crate::policy::GateOptions`], fixtures, snapshots and a docs page.

pub mod lint;
pub mod sast;
pub mod sbom;
pub mod sca;
pub mod secrets;
pub mod test;

use crate::gate::Gate;

/// Every gate Portcullis has, in the order `--help` lists them.
pub fn registry() -> &'static [&'static dyn Gate] {
    &[
        &lint::Lint,
        &test::Test,
        &sast::Sast,
        &sca::Sca,
        &secrets::Secrets,
        &sbom::Sbom,
    ]
}

/// The ids of every gate.
pub fn ids() -> Vec<&'static str> {
    registry().iter().map(|gate| gate.id()).collect()
}

/// The gate with this id.
pub fn by_id(id: &str) -> Option<&'static dyn Gate> {
    registry().iter().copied().find(|gate| gate.id() == id)
}
