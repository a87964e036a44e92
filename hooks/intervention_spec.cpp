// Reading and checking intervention specs (see intervention_spec.h).
#include "hooks/intervention_spec.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>

#include "core/error.h"
#include "core/text.h"

namespace headscope {

namespace {

using json = nlohmann::json;

std::pair<int, int> parse_head(const std::string& s, const ModelConfig& cfg) {
  // Exactly digits, a dot, digits: no spaces, signs or trailing characters.
  const size_t dot = s.find('.');
  const bool digits = dot != std::string::npos && dot > 0 && dot + 1 < s.size() && dot < 6 && s.size() - dot < 7 &&
                      s.find_first_not_of("0123456789.") == std::string::npos && s.find('.', dot + 1) == std::string::npos;
  if (!digits) throw Error("'" + escape_control(s) + "' is not a head; write LAYER.HEAD, e.g. 3.1");
  const int l = std::stoi(s.substr(0, dot)), h = std::stoi(s.substr(dot + 1));
  if (l < 0 || l >= cfg.n_layers || h < 0 || h >= cfg.n_heads)
    throw Error("head " + s + " does not exist: this model has layers 0.." + std::to_string(cfg.n_layers - 1) +
                " and heads 0.." + std::to_string(cfg.n_heads - 1));
  return {l, h};
}

// Scale factors and steering values beyond this only measure float32 overflow: the residual stream's next norm
// squares them (1e19 squared is already past float32's range).
constexpr float kMaxFactor = 1e6f;

const json& entries_of(const json& spec) {
  return spec.is_object() && spec.contains("interventions") ? spec["interventions"] : spec;
}

// One entry's fields, each checked for its type and range; errors name the entry and the field.
struct Fields {
  const json& e;
  const std::string& where;
  const ModelConfig& cfg;

  [[noreturn]] void fail(const std::string& what) const { throw Error(where + ": " + what); }

  float number(const char* field, double fallback, bool required) const {
    if (!e.contains(field)) {
      if (required) fail(std::string("needs a \"") + field + "\" number");
      return static_cast<float>(fallback);
    }
    const json& v = e[field];
    if (!v.is_number() || !std::isfinite(static_cast<float>(v.get<double>())))
      fail(std::string("\"") + field + "\" must be a finite number, not " + v.dump());
    return static_cast<float>(v.get<double>());
  }

  std::vector<std::pair<int, int>> heads(bool required) const {
    if (!e.contains("heads") && !required) return {};
    if (!e.contains("heads") || !e["heads"].is_array()) fail("needs \"heads\", a list of \"L.H\" strings");
    std::vector<std::pair<int, int>> out;
    for (const json& hs : e["heads"]) {
      if (!hs.is_string()) fail("\"heads\" holds " + hs.dump() + ", not an \"L.H\" string");
      try {
        out.push_back(parse_head(hs.get<std::string>(), cfg));
      } catch (const Error& err) {
        fail(err.what());
      }
    }
    if (out.empty()) fail("\"heads\" is empty");
    return out;
  }

  // A list of integers that fit a token index (or a layer); `required` lists must be present and non-empty.
  std::vector<int64_t> integers(const char* field, bool required) const {
    if (!e.contains(field)) {
      if (required) fail(std::string("needs \"") + field + "\", a list of integers");
      return {};
    }
    const json& v = e[field];
    if (!v.is_array()) fail(std::string("\"") + field + "\" must be a list of integers, not " + v.dump());
    std::vector<int64_t> out;
    for (const json& x : v) {
      const bool ok = x.is_number_integer() &&
                      (x.is_number_unsigned() ? x.get<uint64_t>() <= (uint64_t{1} << 31) : std::llabs(x.get<int64_t>()) <= (int64_t{1} << 31));
      if (!ok) fail(std::string("\"") + field + "\" holds " + x.dump() + ", not an integer token index");
      out.push_back(x.get<int64_t>());
    }
    if (out.empty() && required) fail(std::string("\"") + field + "\" is empty");
    return out;
  }

  std::string string(const char* field, const std::string& fallback, bool required) const {
    if (!e.contains(field)) {
      if (required) fail(std::string("needs a \"") + field + "\" string");
      return fallback;
    }
    if (!e[field].is_string()) fail(std::string("\"") + field + "\" must be a string, not " + e[field].dump());
    return e[field].get<std::string>();
  }
};

}  // namespace

std::vector<Intervention> parse_spec(const json& spec_in, const ModelConfig& cfg) {
  const json& spec = entries_of(spec_in);
  if (!spec.is_array()) throw Error("an intervention spec is a list, or an object with an \"interventions\" list");
  std::vector<Intervention> out;
  for (size_t index = 0; index < spec.size(); ++index) {
    const json& e = spec[index];
    const std::string at = "intervention " + std::to_string(index);
    if (!e.is_object()) {
      const std::string got = e.type_name();
      throw Error(at + ": expected an object with a \"type\", got " + (got[0] == 'a' || got[0] == 'o' ? "an " : "a ") + got);
    }
    if (!e.contains("type") || !e["type"].is_string()) throw Error(at + ": needs a \"type\" string");
    const std::string type = e["type"].get<std::string>();
    Intervention iv;
    iv.where = at + " (" + escape_control(type) + ")";
    const Fields f{e, iv.where, cfg};
    using K = Intervention::Kind;
    if (type == "ablate") {
      const std::string mode = f.string("mode", "zero", false);
      if (mode != "zero" && mode != "mean") f.fail("\"mode\" must be zero or mean, not '" + escape_control(mode) + "'");
      iv.kind = mode == "mean" ? K::mean_ablate : K::ablate;
      iv.heads = f.heads(true);
    } else if (type == "scale") {
      iv.kind = K::scale, iv.factor = f.number("factor", 0, true), iv.heads = f.heads(true);
      if (std::fabs(iv.factor) > kMaxFactor)
        f.fail("\"factor\" must be within ±1e6 (larger factors overflow float32 in the next norm), not " + e["factor"].dump());
    } else if (type == "patch") {
      iv.kind = K::patch, iv.hook = f.string("hook", "", true), iv.heads = f.heads(false);
      iv.positions = f.integers("positions", false);
    } else if (type == "steer") {
      iv.kind = K::steer;
      for (int64_t l : f.integers("layers", true)) {
        if (l < 0 || l >= cfg.n_layers)
          f.fail("layer " + std::to_string(l) + " does not exist (layers 0.." + std::to_string(cfg.n_layers - 1) + ")");
        iv.layers.push_back(static_cast<int>(l));
      }
      iv.positions = f.integers("positions", false);
      if (!e.contains("vector") || !e["vector"].is_array()) f.fail("needs \"vector\", a list of d_model numbers");
      const float scale = f.number("scale", 1.0, false);
      for (const json& x : e["vector"]) {
        if (!x.is_number() || !std::isfinite(static_cast<float>(x.get<double>())) ||
            !(std::fabs(static_cast<float>(x.get<double>()) * scale) <= kMaxFactor))
          f.fail("\"vector\" holds " + x.dump() + ", not a number within ±1e6 (after \"scale\")");
        iv.vector.push_back(static_cast<float>(x.get<double>()) * scale);
      }
      if (static_cast<int64_t>(iv.vector.size()) != cfg.d_model)
        f.fail("the vector has " + std::to_string(iv.vector.size()) + " entries, d_model is " + std::to_string(cfg.d_model));
    } else if (type == "uniform") {
      iv.kind = K::uniform, iv.heads = f.heads(true);
    } else if (type == "attn_bias") {
      iv.kind = K::attn_bias, iv.bias = f.number("bias", 0, true), iv.heads = f.heads(true);
      iv.keys = f.integers("keys", true);
    } else if (type == "act") {
      iv.kind = K::act, iv.tau = f.number("tau", 0.1, false), iv.beta = f.number("beta", 0.4, false);
      if (!(iv.tau > 0.f) || !(iv.beta >= 0.f && iv.beta <= 1.f)) f.fail("needs tau > 0 and 0 <= beta <= 1");
      iv.heads = f.heads(true);
    } else if (type == "kv_window") {
      iv.kind = K::kv_window, iv.heads = f.heads(true);
      const double sink = f.number("sink", 4, false), window = f.number("window", 64, false);
      if (sink != std::floor(sink) || sink < 0 || sink > 1e9) f.fail("\"sink\" must be a whole number of keys >= 0");
      if (window != std::floor(window) || window < 1 || window > 1e9) f.fail("\"window\" must be a whole number of keys >= 1");
      iv.sink = static_cast<int64_t>(sink), iv.window = static_cast<int64_t>(window);
    } else {
      throw Error(at + ": unknown type '" + escape_control(type) + "' (known: ablate, scale, patch, steer, uniform, attn_bias, act, kv_window)");
    }
    out.push_back(std::move(iv));
  }
  return out;
}

void check_spec_positions(const std::vector<Intervention>& spec, int64_t T) {
  for (const Intervention& iv : spec) {
    auto check = [&](const std::vector<int64_t>& ps, const char* what) {
      for (int64_t p : ps)
        if (p < -T || p >= T)
          throw Error(iv.where + ": " + what + " " + std::to_string(p) + " is outside the prompt's " + std::to_string(T) +
                      " tokens (valid: " + std::to_string(-T) + ".." + std::to_string(T - 1) + ")");
    };
    check(iv.positions, "position");
    check(iv.keys, "key");
  }
}

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

json load_spec(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open the intervention spec");
  json spec = json::parse(in, nullptr, false);
  if (spec.is_discarded()) throw Error(path + ": the intervention spec is not valid JSON");
  return spec;
}

json spec_for_heads(const std::string& heads, const std::string& mode, const ModelConfig& cfg) {
  json list = json::array();
  for (auto& [l, h] : parse_heads(heads, cfg)) list.push_back(std::to_string(l) + "." + std::to_string(h));
  if (mode == "zero") return json::array({{{"type", "ablate"}, {"heads", list}}});
  if (mode == "mean") return json::array({{{"type", "ablate"}, {"heads", list}, {"mode", "mean"}}});
  if (mode == "act") return json::array({{{"type", "act"}, {"heads", list}}});
  if (mode == "uniform") return json::array({{{"type", "uniform"}, {"heads", list}}});
  if (mode.rfind("scale=", 0) == 0) {
    const std::string num = mode.substr(6);
    float f = 0.f;
    size_t used = 0;
    try {
      f = std::stof(num, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != num.size() || std::isspace(static_cast<unsigned char>(num[0])) || !std::isfinite(f))
      throw Error("mode scale=F needs a finite number, not '" + escape_control(num) + "'");
    if (std::fabs(f) > kMaxFactor) throw Error("mode scale=F needs a factor within ±1e6, not '" + escape_control(num) + "'");
    return json::array({{{"type", "scale"}, {"heads", list}, {"factor", f}}});
  }
  throw Error("unknown mode '" + escape_control(mode) + "' (known: zero, mean, scale=F, act, uniform)");
}

json steer_spec(const std::vector<int>& layers, const std::string& vector_path, double scale, const ModelConfig& cfg) {
  if (layers.empty()) throw Error("steering needs at least one layer");
  std::ifstream in(vector_path);
  if (!in) throw Error(vector_path + ": cannot open the steering vector (a JSON list of d_model numbers)");
  json v = json::parse(in, nullptr, false);
  if (v.is_discarded() || !v.is_array()) throw Error(vector_path + ": the steering vector must be a JSON list of d_model numbers");
  json spec = json::array({{{"type", "steer"}, {"layers", layers}, {"vector", v}, {"scale", scale}}});
  try {
    parse_spec(spec, cfg);
  } catch (const Error& e) {
    throw Error(vector_path + ": " + e.what());
  }
  return spec;
}

bool spec_needs_means(const json& spec_in) {
  const json& spec = entries_of(spec_in);
  if (!spec.is_array()) return false;
  for (const json& e : spec)
    if (e.is_object() && e.contains("type") && e["type"] == "ablate" && e.contains("mode") && e["mode"] == "mean") return true;
  return false;
}

}  // namespace headscope
