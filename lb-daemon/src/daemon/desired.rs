//! What the data plane should carry at this moment, decided with no I/O so
//! that unit tests reach it: MACs and next hops are filled in afterwards
//! by the [`Resolver`](super::Resolver).

use crate::{control::Overrides, dataplane::ServiceSpec, health::Verdicts};

/// The services the data plane should carry: `planned` (the configuration's
/// virtual servers, as `services::plan_for` turned them into services), with
/// the health checkers' `verdicts` on top (weights, quorum and the sorry
/// server), then lbctl's `overrides` (which last until the next reload).
///
/// The overrides see the verdicts' weights and the planned ones, so that a
/// set-weight never revives a backend the checkers took out.
pub fn desired(
    planned: &[ServiceSpec],
    verdicts: &Verdicts,
    overrides: &Overrides,
) -> Vec<ServiceSpec> {
    let mut specs = planned.to_vec();
    crate::health::apply(&mut specs, verdicts);
    overrides.apply(&mut specs, planned);
    specs
}
