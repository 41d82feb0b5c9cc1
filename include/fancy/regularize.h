// Structured regularization: L1, L2, squared L2, elastic net, group lasso (Yuan & Lin;
// SSL, Wen et al. 2016) over filters, channels, kernels, rows, columns, blocks or any
// dims; proximal steps that make groups exactly zero; Distiller-style thresholding;
// sparsity reports; and physical pruning of conv/linear stacks. docs/regularization.md
// has the formulas.
//
//   auto reg = fancy::regularize::Regularizer({{"type:Conv2d", "group_lasso", "filters", 1e-4}});
//   loss = loss + reg.penalty(*model);  loss.backward();  opt.step();
//   reg.prox_step(*model, lr);          // optional: exact zeros by block soft-thresholding
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fancy {
namespace regularize {

// --- the ops (one schema each in the dispatcher: torch.ops.fancy.*) -----------------
// Group specs ("filters", "channels", "kernels", "rows", "columns", "elements", "all",
// "block:AxB…", "dims:D,…") are described in src/ops/group_spec.h and the docs.

// ‖w_g‖_p of every group (p = 1, 2 or inf), shaped as the grid of groups (filters of an
// (O, I, kh, kw) weight: (O, 1, 1, 1)). Differentiable; a zero group has gradient 0.
at::Tensor group_norms(const at::Tensor& w, const std::string& groups = "filters", double p = 2,
                       bool ragged = false);
// Σ_{i∈g} w_i of every group, shaped as the grid.
at::Tensor group_sum(const at::Tensor& w, const std::string& groups = "filters", bool ragged = false);
// w_i · scale[g(i)]; scale has the grid's shape. The in-place form runs under no_grad.
at::Tensor group_scale(const at::Tensor& w, const at::Tensor& scale, const std::string& groups = "filters",
                       bool ragged = false);
at::Tensor& group_scale_(at::Tensor& w, const at::Tensor& scale, const std::string& groups = "filters",
                         bool ragged = false);

// grad += scale · ∂/∂w group_lasso(w) in one fused pass (norms, then the update), with no
// graph and no temporary the size of w — the cheap way to add the penalty's gradient
// after loss.backward(). Returns scale · group_lasso(w). grad has w's shape and dtype.
double add_group_lasso_grad_(at::Tensor& grad, const at::Tensor& w, const std::string& groups = "filters",
                             double scale = 1, bool size_weighted = false, bool ragged = false);

// --- penalties: differentiable scalars to add to the loss -----------------------------
at::Tensor l1(const at::Tensor& w);          // Σ|w_i|
at::Tensor l2(const at::Tensor& w);          // ‖w‖₂ (gradient 0 at w = 0)
at::Tensor squared_l2(const at::Tensor& w);  // Σ w_i² (weight decay)
// α Σ|w_i| + (1 − α)/2 Σ w_i², α = l1_ratio (scikit-learn's form).
at::Tensor elastic_net(const at::Tensor& w, double l1_ratio);
// Σ_g c_g ‖w_g‖₂ with c_g = √|g| when size_weighted (Yuan & Lin), else 1.
at::Tensor group_lasso(const at::Tensor& w, const std::string& groups = "filters", bool size_weighted = false,
                       bool ragged = false);
// α Σ|w_i| + (1 − α) group_lasso(w).
at::Tensor sparse_group_lasso(const at::Tensor& w, const std::string& groups, double l1_ratio,
                              bool size_weighted = false, bool ragged = false);
// The chapter's printed group term Σ_g Σ_{i∈g} w_i², which is squared L2 whatever the
// groups: kept to show that it zeroes no group.
at::Tensor group_sum_of_squares(const at::Tensor& w, const std::string& groups = "filters", bool ragged = false);

// --- proximal steps (in place, after the optimizer step; step = learning rate · λ) ---
// w ← sign(w) · max(|w| − step, 0).
void prox_l1_(at::Tensor& w, double step);
// w_g ← max(0, 1 − step · c_g / ‖w_g‖₂) · w_g: groups whose norm is at most step · c_g
// become exactly zero, the others shrink without turning.
void prox_group_lasso_(at::Tensor& w, const std::string& groups, double step, bool size_weighted = false,
                       bool ragged = false);
// Distiller's thresholding: zero every group whose measure ("mean" |w|, "max" |w| or
// "l2" norm) is at or below threshold. Returns the number of groups zeroed.
int64_t threshold_groups_(at::Tensor& w, const std::string& groups, double threshold,
                          const std::string& measure = "mean", bool ragged = false);

// --- a model's parameters, and rules that say which penalty goes where -------------
struct NamedParam {
  std::string name;         // "features.0.weight"
  std::string module_type;  // "Conv2d" (C++'s Conv2dImpl and Python's Conv2d alike)
  at::Tensor value;
};
std::vector<NamedParam> named_parameters(const torch::nn::Module& model);

struct Rule {
  // Which parameters: an exact name or a glob ("features.*.weight"); "type:Conv2d" (the
  // weight of every module of that type); "*" (every weight of rank >= 2 the groups fit).
  std::string target = "*";
  // l1, l2, squared_l2, elastic_net, group_lasso, sparse_group_lasso, group_sum_of_squares
  std::string penalty = "group_lasso";
  std::string groups = "filters";  // for the group penalties
  double lambda = 0;
  double l1_ratio = 0.5;       // elastic_net and sparse_group_lasso
  bool size_weighted = false;  // c_g = √|g|
  bool ragged = false;         // allow smaller tiles at the edges of block:… groups
  double threshold = 0;        // > 0: Distiller thresholding in threshold()
  std::string measure = "mean";
};

class Regularizer {
 public:
  explicit Regularizer(std::vector<Rule> rules);
  // {"rules": [{"target": "type:Conv2d", "penalty": "group_lasso", "groups": "filters",
  //             "lambda": 1e-4}, …]}; errors name the origin, the rule and the field.
  static Regularizer from_json(const std::string& text, const std::string& origin = "config");
  static Regularizer from_file(const std::string& path);
  const std::vector<Rule>& rules() const { return rules_; }

  // Σ_rules λ · R(w) over the parameters each rule selects (a differentiable scalar).
  at::Tensor penalty(const std::vector<NamedParam>& params) const;
  at::Tensor penalty(const torch::nn::Module& model) const { return penalty(named_parameters(model)); }
  // The same penalty's gradient added straight into each parameter's .grad (created
  // when undefined), after loss.backward(); group lasso through the fused
  // add_group_lasso_grad_. Returns the penalty's value. Use it instead of penalty(),
  // not with it.
  double add_gradients(const std::vector<NamedParam>& params) const;
  double add_gradients(const torch::nn::Module& model) const { return add_gradients(named_parameters(model)); }
  // The proximal step of every rule that has one (L1, group lasso, sparse group lasso)
  // with step = lr · λ; other penalties are left to the gradient.
  void prox_step(const std::vector<NamedParam>& params, double lr) const;
  void prox_step(const torch::nn::Module& model, double lr) const { prox_step(named_parameters(model), lr); }
  // Distiller thresholding for the rules with threshold > 0; returns groups zeroed.
  int64_t threshold(const std::vector<NamedParam>& params) const;
  int64_t threshold(const torch::nn::Module& model) const { return threshold(named_parameters(model)); }

  // The parameters a rule selects (errors: a name or type that matches nothing, a
  // group spec that does not fit the parameter's shape).
  std::vector<NamedParam> select(const Rule& rule, const std::vector<NamedParam>& params) const;

 private:
  std::vector<Rule> rules_;
};

// --- sparsity report ------------------------------------------------------------------
struct LayerSparsity {
  std::string name;
  std::vector<int64_t> shape;
  int64_t params = 0, zeros = 0;
  // Shares of zero groups; -1 where the grouping does not apply (kernels of a 2-D weight).
  double filters = -1, channels = -1, kernels = -1, rows = -1, columns = -1;
  int64_t macs = -1;  // multiply-adds for one input, when known (sparsity_report of a Sequential)
};
struct SparsityReport {
  std::vector<LayerSparsity> layers;
  int64_t params = 0, zeros = 0, macs = -1;
  std::string table() const;  // markdown
  std::string json() const;
};
// Every weight of rank >= 2.
SparsityReport sparsity_report(const std::vector<NamedParam>& params);
// With multiply-adds per Conv2d/Linear for one input of `input_shape` (e.g. {1, 28, 28}).
SparsityReport sparsity_report(torch::nn::Sequential& net, const std::vector<int64_t>& input_shape);

// --- physical pruning -----------------------------------------------------------------
// A Sequential of Conv2d / Linear layers with BatchNorm1d/2d, ReLU, LeakyReLU, Tanh,
// Sigmoid, MaxPool2d, AvgPool2d (no padding), Dropout, Flatten or Identity between them.
// Zero filters of a layer (rows of a Linear) are removed with the matching input
// channels of the next layer (and the batch-norm channels between). A removed filter
// still gives a constant activation a_c (its bias through batch norm and activation);
// that constant is folded into the next layer's bias, which is exact for a Linear and an
// unpadded Conv2d. Where the next Conv2d pads and a_c ≠ 0 the filter is kept. The pruned
// network computes the same function (eval mode).
struct PruneResult {
  torch::nn::Sequential net{nullptr};
  struct Layer {
    std::string name;
    int64_t before = 0, after = 0, kept_nonzero_constant = 0;
  };
  std::vector<Layer> layers;
  int64_t filters_before = 0, filters_after = 0;
};
PruneResult prune(torch::nn::Sequential& net, const std::vector<int64_t>& input_shape);

}  // namespace regularize
}  // namespace fancy
