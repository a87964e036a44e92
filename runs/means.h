// Mean ablation's reference values: each head's mean output over a set of prompts (runs the model, so it lives in
// runs/, above hooks/ where HeadMeans is used).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hooks/interventions.h"
#include "model/model.h"

namespace headscope {

// Mean of each head's output (hook_z) over every position of the prompts: layer -> [H, d_head].
HeadMeans compute_head_means(const Model& model, const std::vector<std::string>& texts);

// The means a spec needs: empty when it has no mean-ablation entry; otherwise computed over the prompt file
// `mean_data` (an Error when none is given).
HeadMeans means_for_spec(const nlohmann::json& spec, const Model& model, const std::string& mean_data);

}  // namespace headscope
