// Penalties, proximal steps, thresholding and the rule-based Regularizer
// (include/fancy/regularize.h). Everything per group goes through the group ops, so a
// penalty over a whole model is one pass over each weight, never a loop over groups.
#include <fnmatch.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "fancy/regularize.h"
#include "ops/group_spec.h"

namespace fancy {
namespace regularize {

using at::Tensor;

namespace {

// c_g = √|g| for every group (only ragged tiles differ from the full tile size).
Tensor size_weights(const Tensor& w, const std::string& groups, bool ragged) {
  torch::NoGradGuard no_grad;
  return group_sum(torch::ones_like(w), groups, ragged).sqrt_();
}

void check_lambda(const char* what, double v) {
  TORCH_CHECK(std::isfinite(v) && v >= 0, "fancy::regularize::", what, ": must be finite and >= 0, got ", v);
}

}  // namespace

Tensor l1(const Tensor& w) { return w.abs().sum(); }
Tensor l2(const Tensor& w) { return group_norms(w, "all").reshape({}); }
Tensor squared_l2(const Tensor& w) { return w.pow(2).sum(); }

Tensor elastic_net(const Tensor& w, double l1_ratio) {
  TORCH_CHECK(l1_ratio >= 0 && l1_ratio <= 1, "fancy::regularize::elastic_net: l1_ratio must be in [0, 1], got ",
              l1_ratio);
  return l1_ratio * l1(w) + (1 - l1_ratio) / 2 * squared_l2(w);
}

Tensor group_lasso(const Tensor& w, const std::string& groups, bool size_weighted, bool ragged) {
  Tensor norms = group_norms(w, groups, 2, ragged);
  if (size_weighted) norms = norms * size_weights(w, groups, ragged);
  return norms.sum();
}

Tensor sparse_group_lasso(const Tensor& w, const std::string& groups, double l1_ratio, bool size_weighted,
                          bool ragged) {
  TORCH_CHECK(l1_ratio >= 0 && l1_ratio <= 1,
              "fancy::regularize::sparse_group_lasso: l1_ratio must be in [0, 1], got ", l1_ratio);
  return l1_ratio * l1(w) + (1 - l1_ratio) * group_lasso(w, groups, size_weighted, ragged);
}

Tensor group_sum_of_squares(const Tensor& w, const std::string& groups, bool ragged) {
  return group_norms(w, groups, 2, ragged).pow(2).sum();
}

void prox_l1_(Tensor& w, double step) {
  check_lambda("prox_l1_: step", step);
  torch::NoGradGuard no_grad;
  w.copy_(torch::softshrink(w, step));
}

void prox_group_lasso_(Tensor& w, const std::string& groups, double step, bool size_weighted, bool ragged) {
  check_lambda("prox_group_lasso_: step", step);
  torch::NoGradGuard no_grad;
  const Tensor norms = group_norms(w, groups, 2, ragged);
  Tensor t = size_weighted ? step * size_weights(w, groups, ragged) : torch::full_like(norms, step);
  // max(0, 1 − t/‖w_g‖): a zero group stays zero (the ratio is taken only where ‖w_g‖ > t).
  const Tensor scale = torch::where(norms > t, 1 - t / norms, torch::zeros_like(norms));
  group_scale_(w, scale, groups, ragged);
}

int64_t threshold_groups_(Tensor& w, const std::string& groups, double threshold, const std::string& measure,
                          bool ragged) {
  check_lambda("threshold_groups_: threshold", threshold);
  torch::NoGradGuard no_grad;
  Tensor m;
  if (measure == "mean")
    m = group_norms(w, groups, 1, ragged) / group_sum(torch::ones_like(w), groups, ragged);
  else if (measure == "max")
    m = group_norms(w, groups, INFINITY, ragged);
  else if (measure == "l2")
    m = group_norms(w, groups, 2, ragged);
  else
    TORCH_CHECK(false, "fancy::regularize::threshold_groups_: measure must be mean, max or l2, got '", measure, "'");
  const Tensor zero = m <= threshold;
  group_scale_(w, (~zero).to(w.scalar_type()), groups, ragged);
  return zero.sum().item<int64_t>();
}

// --- parameters and rules -------------------------------------------------------------

std::vector<NamedParam> named_parameters(const torch::nn::Module& model) {
  std::vector<NamedParam> out;
  for (const auto& item : model.named_modules("", /*include_self=*/true)) {
    std::string type = item.value()->name();  // "torch::nn::Conv2dImpl" → "Conv2d"
    if (const auto c = type.rfind("::"); c != std::string::npos) type = type.substr(c + 2);
    if (type.size() > 4 && type.compare(type.size() - 4, 4, "Impl") == 0) type.resize(type.size() - 4);
    for (const auto& p : item.value()->named_parameters(/*recurse=*/false))
      out.push_back({item.key().empty() ? p.key() : item.key() + "." + p.key(), type, p.value()});
  }
  return out;
}

namespace {

const char* const kPenalties[] = {"l1",          "l2",          "squared_l2",          "elastic_net",
                                  "group_lasso", "sparse_group_lasso", "group_sum_of_squares"};

bool is_group_penalty(const std::string& p) {
  return p == "group_lasso" || p == "sparse_group_lasso" || p == "group_sum_of_squares";
}

// Whether the rule's groups fit w (for "*", which skips what they do not fit).
bool groups_fit(const Rule& r, const Tensor& w) {
  if (!is_group_penalty(r.penalty)) return true;
  try {
    ops::group_block("regularize", w.sizes(), r.groups, r.ragged);
    return true;
  } catch (const c10::Error&) {
    return false;
  }
}

void check_rule(const Rule& r, const std::string& where) {
  bool known = false;
  for (const char* p : kPenalties) known = known || r.penalty == p;
  TORCH_CHECK(known, where, ": unknown penalty '", r.penalty,
              "' (expected l1, l2, squared_l2, elastic_net, group_lasso, sparse_group_lasso or group_sum_of_squares)");
  TORCH_CHECK(std::isfinite(r.lambda) && r.lambda >= 0, where, ": lambda must be finite and >= 0, got ", r.lambda);
  TORCH_CHECK(r.l1_ratio >= 0 && r.l1_ratio <= 1, where, ": l1_ratio must be in [0, 1], got ", r.l1_ratio);
  TORCH_CHECK(std::isfinite(r.threshold) && r.threshold >= 0, where, ": threshold must be >= 0, got ", r.threshold);
  TORCH_CHECK(r.measure == "mean" || r.measure == "max" || r.measure == "l2", where,
              ": measure must be mean, max or l2, got '", r.measure, "'");
  TORCH_CHECK(!r.target.empty(), where, ": target is empty (a parameter name, a glob, type:<Module> or *)");
}

Tensor rule_penalty(const Rule& r, const Tensor& w) {
  if (r.penalty == "l1") return l1(w);
  if (r.penalty == "l2") return l2(w);
  if (r.penalty == "squared_l2") return squared_l2(w);
  if (r.penalty == "elastic_net") return elastic_net(w, r.l1_ratio);
  if (r.penalty == "group_lasso") return group_lasso(w, r.groups, r.size_weighted, r.ragged);
  if (r.penalty == "sparse_group_lasso") return sparse_group_lasso(w, r.groups, r.l1_ratio, r.size_weighted, r.ragged);
  return group_sum_of_squares(w, r.groups, r.ragged);
}

}  // namespace

Regularizer::Regularizer(std::vector<Rule> rules) : rules_(std::move(rules)) {
  for (size_t i = 0; i < rules_.size(); ++i) check_rule(rules_[i], "fancy::regularize: rule " + std::to_string(i));
}

Regularizer Regularizer::from_json(const std::string& text, const std::string& origin) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    TORCH_CHECK(false, origin, ": not valid JSON: ", e.what());
  }
  const nlohmann::json& list = j.is_object() && j.contains("rules") ? j["rules"] : j;
  TORCH_CHECK(list.is_array(), origin, ": expected {\"rules\": [...]} or a list of rules");
  std::vector<Rule> rules;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string where = origin + ": rule " + std::to_string(i);
    TORCH_CHECK(list[i].is_object(), where, ": expected an object");
    Rule r;
    for (const auto& [key, v] : list[i].items()) {
      auto text_field = [&](std::string& dst) {
        TORCH_CHECK(v.is_string(), where, ": field '", key, "' must be a string, got ", v.dump());
        dst = v.get<std::string>();
      };
      auto number_field = [&](double& dst) {
        TORCH_CHECK(v.is_number(), where, ": field '", key, "' must be a number, got ", v.dump());
        dst = v.get<double>();
      };
      auto bool_field = [&](bool& dst) {
        TORCH_CHECK(v.is_boolean(), where, ": field '", key, "' must be true or false, got ", v.dump());
        dst = v.get<bool>();
      };
      if (key == "target") text_field(r.target);
      else if (key == "penalty") text_field(r.penalty);
      else if (key == "groups") text_field(r.groups);
      else if (key == "measure") text_field(r.measure);
      else if (key == "lambda") number_field(r.lambda);
      else if (key == "l1_ratio") number_field(r.l1_ratio);
      else if (key == "threshold") number_field(r.threshold);
      else if (key == "size_weighted") bool_field(r.size_weighted);
      else if (key == "ragged") bool_field(r.ragged);
      else
        TORCH_CHECK(false, where, ": unknown field '", key, "' (expected target, penalty, groups, lambda, l1_ratio, ",
                    "size_weighted, ragged, threshold, measure)");
    }
    check_rule(r, where);
    rules.push_back(r);
  }
  return Regularizer(std::move(rules));
}

Regularizer Regularizer::from_file(const std::string& path) {
  std::ifstream f(path);
  TORCH_CHECK(f, path, ": cannot open the regularization config");
  std::stringstream s;
  s << f.rdbuf();
  return from_json(s.str(), path);
}

std::vector<NamedParam> Regularizer::select(const Rule& r, const std::vector<NamedParam>& params) const {
  std::vector<NamedParam> out;
  if (r.target == "*") {
    for (const auto& p : params)
      if (p.value.dim() >= 2 && groups_fit(r, p.value)) out.push_back(p);
    return out;
  }
  const bool by_type = r.target.rfind("type:", 0) == 0;
  for (const auto& p : params) {
    const bool match = by_type ? (p.module_type == r.target.substr(5) &&
                                  (p.name == "weight" || (p.name.size() > 7 &&
                                                              p.name.compare(p.name.size() - 7, 7, ".weight") == 0)))
                               : fnmatch(r.target.c_str(), p.name.c_str(), 0) == 0;
    if (!match) continue;
    if (is_group_penalty(r.penalty)) {
      try {
        ops::group_block("regularize", p.value.sizes(), r.groups, r.ragged);
      } catch (const c10::Error& e) {
        TORCH_CHECK(false, "fancy::regularize: parameter '", p.name, "' (shape ", p.value.sizes(), "): ",
                    e.what_without_backtrace());
      }
    }
    out.push_back(p);
  }
  if (out.empty()) {
    std::string names;
    for (size_t i = 0; i < params.size() && i < 12; ++i) names += (i ? ", " : "") + params[i].name;
    if (params.size() > 12) names += ", …";
    TORCH_CHECK(false, "fancy::regularize: target '", r.target, "' matches no parameter",
                by_type ? " (no module of that type has a weight)" : "", "; the model has: ", names);
  }
  return out;
}

Tensor Regularizer::penalty(const std::vector<NamedParam>& params) const {
  Tensor total;
  for (const auto& r : rules_) {
    if (r.lambda == 0) continue;
    for (const auto& p : select(r, params)) {
      Tensor term = r.lambda * rule_penalty(r, p.value);
      total = total.defined() ? total + term : term;
    }
  }
  if (!total.defined()) return torch::zeros({}, params.empty() ? torch::TensorOptions() : params[0].value.options());
  return total;
}

double Regularizer::add_gradients(const std::vector<NamedParam>& params) const {
  double total = 0;
  for (const auto& r : rules_) {
    if (r.lambda == 0) continue;
    for (const auto& p : select(r, params)) {
      Tensor& grad = p.value.mutable_grad();
      if (!grad.defined()) grad = torch::zeros_like(p.value);
      if (r.penalty == "group_lasso") {
        total += add_group_lasso_grad_(grad, p.value, r.groups, r.lambda, r.size_weighted, r.ragged);
        continue;
      }
      // The other penalties are elementwise: their own autograd gradient is one pass too.
      const Tensor leaf = p.value.detach().requires_grad_();
      const Tensor value = r.lambda * rule_penalty(r, leaf);
      const Tensor d = torch::autograd::grad({value}, {leaf})[0];
      torch::NoGradGuard no_grad;
      grad.add_(d);
      total += value.item<double>();
    }
  }
  return total;
}

void Regularizer::prox_step(const std::vector<NamedParam>& params, double lr) const {
  check_lambda("prox_step: lr", lr);
  for (const auto& r : rules_) {
    if (r.lambda == 0) continue;
    for (auto p : select(r, params)) {
      Tensor w = p.value;
      if (r.penalty == "l1") prox_l1_(w, lr * r.lambda);
      if (r.penalty == "group_lasso") prox_group_lasso_(w, r.groups, lr * r.lambda, r.size_weighted, r.ragged);
      if (r.penalty == "sparse_group_lasso") {  // the prox of L1 + group is soft- then block-thresholding
        prox_l1_(w, lr * r.lambda * r.l1_ratio);
        prox_group_lasso_(w, r.groups, lr * r.lambda * (1 - r.l1_ratio), r.size_weighted, r.ragged);
      }
    }
  }
}

int64_t Regularizer::threshold(const std::vector<NamedParam>& params) const {
  int64_t zeroed = 0;
  for (const auto& r : rules_) {
    if (r.threshold <= 0) continue;
    const std::string groups = is_group_penalty(r.penalty) ? r.groups : "elements";
    for (auto p : select(r, params)) {
      Tensor w = p.value;
      zeroed += threshold_groups_(w, groups, r.threshold, r.measure, r.ragged);
    }
  }
  return zeroed;
}

}  // namespace regularize
}  // namespace fancy
