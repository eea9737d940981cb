// Internal helpers of the routers: routing statistics shared by the router implementations.
#pragma once

#include <torch/types.h>

#include "ewa/core/router.h"

namespace ewa::detail {

/// Mean over rows of the entropy (nats) of probs [..., E]; detached, double scalar.
torch::Tensor mean_entropy(const torch::Tensor& probs);

/// Fills expert_load [E] (share of dispatched assignments per expert), mean_gate and
/// dropped_fraction (given, scalar) from a sparse plan's dispatch_index/combine_weight.
void add_sparse_stats(RoutingPlan& plan, const torch::Tensor& dropped_fraction);

}  // namespace ewa::detail
