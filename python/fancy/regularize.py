"""Structured regularization from Python: group lasso and friends on torch.nn models.

    import fancy.regularize as R
    reg = R.Regularizer([{"target": "type:Conv2d", "penalty": "group_lasso",
                          "groups": "filters", "lambda": 1e-4}])
    loss = criterion(model(x), y) + reg.penalty(model)
    loss.backward(); opt.step()
    reg.prox_step(model, lr)          # block soft-thresholding: exact zero filters
    print(R.sparsity_report(model))

    # or, cheaper: the penalty's gradient fused straight into .grad after backward
    criterion(model(x), y).backward(); reg.add_gradients(model); opt.step()

The per-group work runs in fancy's ops (torch.ops.fancy.group_norms, group_sum,
group_scale, group_scale_, group_lasso_grad_), the same kernels as C++'s fancy::regularize; rules have the
same fields and JSON form. Group specs: filters, channels, kernels, rows, columns,
elements, all, block:AxB…, dims:D,… (docs/regularization.md).
"""
import fnmatch
import json
import math

import torch

from . import _load_library

_load_library()
_ops = torch.ops.fancy

__all__ = [
    "group_grid", "group_norms", "group_sum", "group_scale", "group_scale_", "l1", "l2", "squared_l2", "elastic_net",
    "group_lasso", "add_group_lasso_grad_", "sparse_group_lasso", "group_sum_of_squares", "prox_l1_", "prox_group_lasso_",
    "threshold_groups_", "Regularizer", "sparsity_report",
]


def group_norms(w, groups="filters", p=2.0, ragged=False):
    """‖w_g‖_p of every group (p = 1, 2 or inf), shaped as the grid of groups."""
    return _ops.group_norms(w, groups, float(p), ragged)


def group_sum(w, groups="filters", ragged=False):
    return _ops.group_sum(w, groups, ragged)


def group_scale(w, scale, groups="filters", ragged=False):
    return _ops.group_scale(w, scale, groups, ragged)


def group_scale_(w, scale, groups="filters", ragged=False):
    return _ops.group_scale_(w, scale, groups, ragged)


def l1(w):
    return w.abs().sum()


def l2(w):
    return group_norms(w, "all").reshape(())


def squared_l2(w):
    return w.pow(2).sum()


def _check_ratio(name, v):
    if not 0 <= v <= 1:
        raise ValueError("fancy.regularize.%s: l1_ratio must be in [0, 1], got %r" % (name, v))


def elastic_net(w, l1_ratio):
    """α Σ|w| + (1 − α)/2 Σw² (scikit-learn's form)."""
    _check_ratio("elastic_net", l1_ratio)
    return l1_ratio * l1(w) + (1 - l1_ratio) / 2 * squared_l2(w)


def _size_weights(w, groups, ragged):
    with torch.no_grad():
        return group_sum(torch.ones_like(w), groups, ragged).sqrt_()


def group_lasso(w, groups="filters", size_weighted=False, ragged=False):
    """Σ_g c_g ‖w_g‖₂, c_g = √|g| when size_weighted."""
    norms = group_norms(w, groups, 2.0, ragged)
    if size_weighted:
        norms = norms * _size_weights(w, groups, ragged)
    return norms.sum()


def add_group_lasso_grad_(grad, w, groups="filters", scale=1.0, size_weighted=False, ragged=False):
    """grad += scale · ∂/∂w group_lasso(w), fused (no graph, no temporary the size of w);
    returns scale · group_lasso(w) as a float."""
    return _ops.group_lasso_grad_(grad, w, groups, float(scale), size_weighted, ragged)


def sparse_group_lasso(w, groups, l1_ratio, size_weighted=False, ragged=False):
    _check_ratio("sparse_group_lasso", l1_ratio)
    return l1_ratio * l1(w) + (1 - l1_ratio) * group_lasso(w, groups, size_weighted, ragged)


def group_sum_of_squares(w, groups="filters", ragged=False):
    """The chapter's printed group term: plain squared L2 whatever the groups."""
    return group_norms(w, groups, 2.0, ragged).pow(2).sum()


def _check_step(name, v):
    if not (math.isfinite(v) and v >= 0):
        raise ValueError("fancy.regularize.%s: must be finite and >= 0, got %r" % (name, v))


@torch.no_grad()
def prox_l1_(w, step):
    """w ← sign(w) max(|w| − step, 0)."""
    _check_step("prox_l1_: step", step)
    w.copy_(torch.nn.functional.softshrink(w, step))
    return w


@torch.no_grad()
def prox_group_lasso_(w, groups, step, size_weighted=False, ragged=False):
    """w_g ← max(0, 1 − step·c_g/‖w_g‖₂) w_g: small groups become exactly zero."""
    _check_step("prox_group_lasso_: step", step)
    norms = group_norms(w, groups, 2.0, ragged)
    t = step * _size_weights(w, groups, ragged) if size_weighted else torch.full_like(norms, step)
    scale = torch.where(norms > t, 1 - t / norms, torch.zeros_like(norms))
    return group_scale_(w, scale, groups, ragged)


@torch.no_grad()
def threshold_groups_(w, groups, threshold, measure="mean", ragged=False):
    """Distiller's thresholding: zero groups whose mean |w| (or max |w|, or L2) <= threshold."""
    _check_step("threshold_groups_: threshold", threshold)
    if measure == "mean":
        m = group_norms(w, groups, 1.0, ragged) / group_sum(torch.ones_like(w), groups, ragged)
    elif measure == "max":
        m = group_norms(w, groups, math.inf, ragged)
    elif measure == "l2":
        m = group_norms(w, groups, 2.0, ragged)
    else:
        raise ValueError("fancy.regularize.threshold_groups_: measure must be mean, max or l2, got %r" % measure)
    zero = m <= threshold
    group_scale_(w, (~zero).to(w.dtype), groups, ragged)
    return int(zero.sum())


_PENALTIES = {
    "l1": lambda r, w: l1(w),
    "l2": lambda r, w: l2(w),
    "squared_l2": lambda r, w: squared_l2(w),
    "elastic_net": lambda r, w: elastic_net(w, r["l1_ratio"]),
    "group_lasso": lambda r, w: group_lasso(w, r["groups"], r["size_weighted"], r["ragged"]),
    "sparse_group_lasso": lambda r, w: sparse_group_lasso(w, r["groups"], r["l1_ratio"], r["size_weighted"],
                                                          r["ragged"]),
    "group_sum_of_squares": lambda r, w: group_sum_of_squares(w, r["groups"], r["ragged"]),
}
_GROUP_PENALTIES = ("group_lasso", "sparse_group_lasso", "group_sum_of_squares")
_DEFAULTS = {"target": "*", "penalty": "group_lasso", "groups": "filters", "lambda": 0.0, "l1_ratio": 0.5,
             "size_weighted": False, "ragged": False, "threshold": 0.0, "measure": "mean"}


def _check_rule(rule, where):
    unknown = set(rule) - set(_DEFAULTS)
    if unknown:
        raise ValueError("%s: unknown field %r (expected %s)" % (where, sorted(unknown)[0], ", ".join(_DEFAULTS)))
    r = dict(_DEFAULTS, **rule)
    for key in ("target", "penalty", "groups", "measure"):
        if not isinstance(r[key], str):
            raise ValueError("%s: field %r must be a string, got %r" % (where, key, r[key]))
    for key in ("lambda", "l1_ratio", "threshold"):
        if isinstance(r[key], bool) or not isinstance(r[key], (int, float)):
            raise ValueError("%s: field %r must be a number, got %r" % (where, key, r[key]))
    if r["penalty"] not in _PENALTIES:
        raise ValueError("%s: unknown penalty %r (expected %s)" % (where, r["penalty"], ", ".join(_PENALTIES)))
    if not (math.isfinite(r["lambda"]) and r["lambda"] >= 0):
        raise ValueError("%s: lambda must be finite and >= 0, got %r" % (where, r["lambda"]))
    if not 0 <= r["l1_ratio"] <= 1:
        raise ValueError("%s: l1_ratio must be in [0, 1], got %r" % (where, r["l1_ratio"]))
    if r["measure"] not in ("mean", "max", "l2"):
        raise ValueError("%s: measure must be mean, max or l2, got %r" % (where, r["measure"]))
    return r


def _named_parameters(model):
    for mod_name, mod in model.named_modules():
        for p_name, p in mod.named_parameters(recurse=False):
            yield (mod_name + "." + p_name if mod_name else p_name), type(mod).__name__, p


def group_grid(shape, groups="filters", ragged=False):
    """The grid of groups of a weight of this shape (its group_norms' shape)."""
    return _ops.group_grid(list(shape), groups, ragged)


def _fits(rule, w):
    if rule["penalty"] not in _GROUP_PENALTIES:
        return True
    try:
        group_grid(w.shape, rule["groups"], rule["ragged"])
        return True
    except RuntimeError:
        return False


class Regularizer:
    """Rules {target, penalty, groups, lambda, …} applied to a torch.nn.Module (the same
    fields and meaning as C++'s fancy::regularize::Regularizer)."""

    def __init__(self, rules):
        if isinstance(rules, dict):
            rules = rules.get("rules", rules)
        self.rules = [_check_rule(dict(r), "fancy.regularize: rule %d" % i) for i, r in enumerate(rules)]

    @classmethod
    def from_json(cls, text, origin="config"):
        data = json.loads(text)
        rules = data["rules"] if isinstance(data, dict) and "rules" in data else data
        if not isinstance(rules, list):
            raise ValueError("%s: expected {\"rules\": [...]} or a list of rules" % origin)
        return cls([_check_rule(r, "%s: rule %d" % (origin, i)) for i, r in enumerate(rules)])

    @classmethod
    def from_file(cls, path):
        with open(path) as f:
            return cls.from_json(f.read(), path)

    def select(self, rule, model):
        params = list(_named_parameters(model))
        target = rule["target"]
        if target == "*":
            return [(n, p) for n, _, p in params if p.dim() >= 2 and _fits(rule, p)]
        out = []
        for name, mtype, p in params:
            if target.startswith("type:"):
                match = mtype == target[5:] and (name == "weight" or name.endswith(".weight"))
            else:
                match = fnmatch.fnmatchcase(name, target)
            if match:
                if rule["penalty"] in _GROUP_PENALTIES:
                    try:
                        group_grid(p.shape, rule["groups"], rule["ragged"])
                    except RuntimeError as e:
                        raise ValueError("fancy.regularize: parameter %r (shape %s): %s"
                                         % (name, list(p.shape), str(e).splitlines()[0])) from None
                out.append((name, p))
        if not out:
            names = [n for n, _, _ in params]
            raise ValueError("fancy.regularize: target %r matches no parameter; the model has: %s"
                             % (target, ", ".join(names[:12]) + (", …" if len(names) > 12 else "")))
        return out

    def penalty(self, model):
        total = None
        for r in self.rules:
            if r["lambda"] == 0:
                continue
            for _, p in self.select(r, model):
                term = r["lambda"] * _PENALTIES[r["penalty"]](r, p)
                total = term if total is None else total + term
        return total if total is not None else torch.zeros(())

    def add_gradients(self, model):
        """The penalty's gradient added straight into each parameter's .grad (created when
        None), after loss.backward(); group lasso through the fused add_group_lasso_grad_.
        Returns the penalty's value (a float). Use it instead of penalty(), not with it."""
        total = 0.0
        for r in self.rules:
            if r["lambda"] == 0:
                continue
            for _, p in self.select(r, model):
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                if r["penalty"] == "group_lasso":
                    total += add_group_lasso_grad_(p.grad, p.detach(), r["groups"], r["lambda"], r["size_weighted"],
                                                   r["ragged"])
                    continue
                leaf = p.detach().requires_grad_()
                with torch.enable_grad():
                    value = r["lambda"] * _PENALTIES[r["penalty"]](r, leaf)
                    (d,) = torch.autograd.grad(value, leaf)
                with torch.no_grad():
                    p.grad.add_(d)
                total += float(value)
        return total

    @torch.no_grad()
    def prox_step(self, model, lr):
        _check_step("prox_step: lr", lr)
        for r in self.rules:
            if r["lambda"] == 0:
                continue
            for _, p in self.select(r, model):
                step = lr * r["lambda"]
                if r["penalty"] == "l1":
                    prox_l1_(p, step)
                elif r["penalty"] == "group_lasso":
                    prox_group_lasso_(p, r["groups"], step, r["size_weighted"], r["ragged"])
                elif r["penalty"] == "sparse_group_lasso":
                    prox_l1_(p, step * r["l1_ratio"])
                    prox_group_lasso_(p, r["groups"], step * (1 - r["l1_ratio"]), r["size_weighted"], r["ragged"])

    @torch.no_grad()
    def threshold(self, model):
        zeroed = 0
        for r in self.rules:
            if r["threshold"] <= 0:
                continue
            groups = r["groups"] if r["penalty"] in _GROUP_PENALTIES else "elements"
            for _, p in self.select(r, model):
                zeroed += threshold_groups_(p, groups, r["threshold"], r["measure"], r["ragged"])
        return zeroed


@torch.no_grad()
def sparsity_report(model):
    """Per weight of rank >= 2: shares of zero filters, channels, kernels, rows, columns
    and elements (None where a grouping does not apply), as a dict."""
    def share(w, groups, ok):
        if not ok:
            return None
        m = group_norms(w, groups, math.inf)
        return float(m.eq(0).sum()) / m.numel()

    layers, params, zeros = [], 0, 0
    for name, _, p in _named_parameters(model):
        if p.dim() < 2:
            continue
        w = p.detach()
        z = int(w.eq(0).sum())
        layers.append({"name": name, "shape": list(w.shape), "params": w.numel(), "zeros": z,
                       "zero_filters": share(w, "filters", True), "zero_channels": share(w, "channels", True),
                       "zero_kernels": share(w, "kernels", w.dim() >= 3),
                       "zero_rows": share(w, "rows", w.dim() == 2), "zero_columns": share(w, "columns", w.dim() == 2)})
        params += w.numel()
        zeros += z
    return {"params": params, "zeros": zeros, "layers": layers}
