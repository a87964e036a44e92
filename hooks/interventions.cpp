// Interventions from a JSON spec (see interventions.h).
#include "hooks/interventions.h"

#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include "core/error.h"

namespace headscope {

namespace {

std::pair<int, int> parse_head(const std::string& s, const ModelConfig& cfg) {
  // Exactly digits, a dot, digits: no spaces, signs or trailing characters.
  const size_t dot = s.find('.');
  const bool digits = dot != std::string::npos && dot > 0 && dot + 1 < s.size() && dot < 6 && s.size() - dot < 7 &&
                      s.find_first_not_of("0123456789.") == std::string::npos && s.find('.', dot + 1) == std::string::npos;
  if (!digits) throw Error("'" + s + "' is not a head; write LAYER.HEAD, e.g. 3.1");
  const int l = std::stoi(s.substr(0, dot)), h = std::stoi(s.substr(dot + 1));
  if (l < 0 || l >= cfg.n_layers || h < 0 || h >= cfg.n_heads)
    throw Error("head " + s + " does not exist: this model has layers 0.." + std::to_string(cfg.n_layers - 1) +
                " and heads 0.." + std::to_string(cfg.n_heads - 1));
  return {l, h};
}

// Token positions as a bool mask over T, from a list that may count from the end.
at::Tensor position_mask(const nlohmann::json& positions, int64_t T) {
  at::Tensor m = at::zeros({T}, at::kBool);
  if (positions.is_null()) return m.fill_(true);
  for (auto& p : positions) {
    int64_t i = p.get<int64_t>();
    if (i < 0) i += T;
    if (i < 0 || i >= T) throw Error("intervention position " + std::to_string(p.get<int64_t>()) + " is outside the " + std::to_string(T) + " tokens");
    m[i] = true;
  }
  return m;
}

}  // namespace

std::vector<std::pair<int, int>> parse_heads(const std::string& list, const ModelConfig& cfg) {
  std::vector<std::pair<int, int>> out;
  size_t i = 0;
  while (i <= list.size()) {
    size_t j = list.find(',', i);
    if (j == std::string::npos) j = list.size();
    if (j > i) out.push_back(parse_head(list.substr(i, j - i), cfg));
    i = j + 1;
  }
  if (out.empty()) throw Error("no heads given");
  return out;
}

nlohmann::json load_spec(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open the intervention spec");
  nlohmann::json spec = nlohmann::json::parse(in, nullptr, false);
  if (spec.is_discarded()) throw Error(path + ": the intervention spec is not valid JSON");
  return spec;
}

nlohmann::json spec_for_heads(const std::string& heads, const std::string& mode, const ModelConfig& cfg) {
  nlohmann::json list = nlohmann::json::array();
  for (auto& [l, h] : parse_heads(heads, cfg)) list.push_back(std::to_string(l) + "." + std::to_string(h));
  if (mode == "zero") return nlohmann::json::array({{{"type", "ablate"}, {"heads", list}}});
  if (mode == "mean") return nlohmann::json::array({{{"type", "ablate"}, {"heads", list}, {"mode", "mean"}}});
  if (mode == "act") return nlohmann::json::array({{{"type", "act"}, {"heads", list}}});
  if (mode.rfind("scale=", 0) == 0) {
    const std::string num = mode.substr(6);
    float f = 0.f;
    size_t used = 0;
    try {
      f = std::stof(num, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != num.size() || !std::isfinite(f)) throw Error("mode scale=F needs a finite number, not '" + num + "'");
    return nlohmann::json::array({{{"type", "scale"}, {"heads", list}, {"factor", f}}});
  }
  throw Error("unknown mode '" + mode + "' (known: zero, mean, scale=F, act)");
}

bool spec_needs_means(const nlohmann::json& spec_in) {
  const nlohmann::json& spec = spec_in.is_object() && spec_in.contains("interventions") ? spec_in["interventions"] : spec_in;
  if (!spec.is_array()) return false;
  for (const auto& e : spec)
    if (e.is_object() && e.contains("type") && e["type"] == "ablate" && e.contains("mode") && e["mode"] == "mean") return true;
  return false;
}

void install_interventions(const nlohmann::json& spec_in, const ModelConfig& cfg, Hooks& hooks, const ActivationCache* source,
                           const HeadMeans* means) {
  const nlohmann::json& spec = spec_in.is_object() && spec_in.contains("interventions") ? spec_in["interventions"] : spec_in;
  if (!spec.is_array()) throw Error("an intervention spec is a list, or an object with an \"interventions\" list");
  const int64_t H = cfg.n_heads;
  for (size_t index = 0; index < spec.size(); ++index) {
    const nlohmann::json& e = spec[index];
    const std::string at = "intervention " + std::to_string(index);  // how errors name the entry
    if (!e.is_object()) throw Error(at + ": expected an object with a \"type\", got a " + std::string(e.type_name()));
    if (!e.contains("type") || !e["type"].is_string()) throw Error(at + ": needs a \"type\" string");
    const std::string type = e["type"].get<std::string>();
    const std::string where = at + " (" + type + ")";
    // A field that must be a finite number (as float, the precision the hooks and the kernel use).
    auto number = [&](const char* field, double fallback, bool required) {
      if (!e.contains(field)) {
        if (required) throw Error(where + ": needs a \"" + field + "\" number");
        return static_cast<float>(fallback);
      }
      const nlohmann::json& v = e[field];
      if (!v.is_number() || !std::isfinite(static_cast<float>(v.get<double>())))
        throw Error(where + ": \"" + field + "\" must be a finite number, not " + v.dump());
      return static_cast<float>(v.get<double>());
    };
    // The "heads" list: "L.H" strings.
    auto heads = [&]() {
      if (!e.contains("heads") || !e["heads"].is_array())
        throw Error(where + ": needs \"heads\", a list of \"L.H\" strings");
      std::vector<std::pair<int, int>> out;
      for (const auto& hs : e["heads"]) {
        if (!hs.is_string()) throw Error(where + ": \"heads\" holds " + hs.dump() + ", not an \"L.H\" string");
        out.push_back(parse_head(hs.get<std::string>(), cfg));
      }
      return out;
    };
    try {
      if (type == "ablate" && e.value("mode", "zero") == "mean") {
        if (!means) throw Error("mean ablation needs head means from a reference set of prompts");
        for (auto [l, h] : heads()) {
          at::Tensor mean = means->z.at(l).select(0, h);  // [d]
          hooks.add(Hooks::name(l, "attn.hook_z"), [h = h, mean](const at::Tensor& z, const HookContext&) {
            at::Tensor out = z.clone();
            out.select(1, h).copy_(mean.unsqueeze(0).expand({z.size(0), z.size(2)}));
            return out;
          });
        }
      } else if (type == "ablate" || type == "scale") {
        if (type == "ablate" && e.value("mode", "zero") != "zero")
          throw Error("ablate mode must be zero or mean, not '" + e.value("mode", "") + "'");
        const float factor = type == "ablate" ? 0.f : number("factor", 0, true);
        for (auto [l, h] : heads()) {
          hooks.add(Hooks::name(l, "attn.hook_z"), [h = h, factor](const at::Tensor& z, const HookContext&) {
            at::Tensor out = z.clone();
            out.select(1, h).mul_(factor);  // z [T, H, d]
            if (factor == 0.f) out.select(1, h).zero_();  // exact zeros, also where z held inf/nan
            return out;
          });
        }
      } else if (type == "patch") {
        if (!source) throw Error("a patch intervention needs a source run");
        const std::string name = e.at("hook").get<std::string>();
        std::vector<int> heads;
        if (e.contains("heads"))
          for (auto& hs : e["heads"]) heads.push_back(parse_head(hs.get<std::string>(), cfg).second);
        const nlohmann::json positions = e.value("positions", nlohmann::json());
        hooks.add(name, [name, heads, positions, source, H](const at::Tensor& v, const HookContext&) {
          const at::Tensor& src = source->get(name);
          if (src.sizes() != v.sizes()) throw Error("patch " + name + ": the source run has a different shape (another prompt length?)");
          at::Tensor mask = position_mask(positions, v.size(0));  // [T]
          at::Tensor out = v.clone();
          if (heads.empty()) {
            out.index_put_({mask}, src.index({mask}));
          } else {
            if (v.dim() != 3 || v.size(1) != H) throw Error("patch " + name + ": heads can only be chosen on per-head hooks");
            for (int h : heads) {
              at::Tensor o = out.select(1, h), s = src.select(1, h);
              o.index_put_({mask}, s.index({mask}));
            }
          }
          return out;
        });
      } else if (type == "steer") {
        std::vector<float> vec = e.at("vector").get<std::vector<float>>();
        if (static_cast<int64_t>(vec.size()) != cfg.d_model)
          throw Error(where + ": the vector has " + std::to_string(vec.size()) + " entries, d_model is " + std::to_string(cfg.d_model));
        for (float x : vec)
          if (!std::isfinite(x)) throw Error(where + ": the vector holds a value that is not a finite float");
        const float scale = number("scale", 1.0, false);
        at::Tensor v = at::tensor(vec, at::kFloat) * scale;
        const nlohmann::json positions = e.value("positions", nlohmann::json());
        for (auto& l : e.at("layers")) {
          int layer = l.get<int>();
          if (layer < 0 || layer >= cfg.n_layers) throw Error(where + ": layer " + std::to_string(layer) + " does not exist");
          hooks.add(Hooks::name(layer, "hook_resid_pre"), [v, positions](const at::Tensor& x, const HookContext&) {
            at::Tensor mask = position_mask(positions, x.size(0)).to(at::kFloat).unsqueeze(1);
            return x + mask * v.unsqueeze(0);
          });
        }
      } else if (type == "uniform") {  // the retrieval-head masking experiment: uniform attention, not zero output
        for (auto [l, h] : heads()) hooks.kernel_edits(l).uniform_heads.push_back(h);
      } else if (type == "attn_bias") {  // additive logit bias on chosen key positions (attention steering)
        const float b = number("bias", 0, true);
        for (auto [l, h] : heads())
          for (auto& key : e.at("keys")) hooks.kernel_edits(l).bias.emplace_back(h, key.get<int64_t>(), b);
      } else if (type == "act") {  // ACT attention calibration: sink-like keys past the first scaled by beta, per row
        const float tau = number("tau", 0.1, false), beta = number("beta", 0.4, false);
        if (!(tau > 0.f) || !(beta >= 0.f && beta <= 1.f)) throw Error(where + ": needs tau > 0 and 0 <= beta <= 1");
        for (auto [l, h] : heads()) hooks.kernel_edits(l).act.emplace_back(h, tau, beta);
      } else {
        throw Error(at + ": unknown type '" + type + "' (known: ablate, scale, patch, steer, uniform, attn_bias, act)");
      }
    } catch (const nlohmann::json::exception& ex) {
      throw Error(where + ": a field has the wrong type (" + ex.what() + ")");
    }
  }
}

}  // namespace headscope
