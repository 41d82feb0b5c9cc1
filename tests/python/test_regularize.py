"""Structured regularization from Python: float64 gradcheck of every group op, parity of
the penalties with plain torch compositions, proximal steps, the Regularizer on a
torch.nn model, and the bad inputs the issue names."""
import math

import pytest
import torch

import fancy.regularize as R

D = torch.double

# (shape, groups, ragged): every kind of group, including ragged tiles.
SPECS = [
    ((5, 3, 2, 2), "filters", False), ((5, 3, 2, 2), "channels", False), ((5, 3, 2, 2), "kernels", False),
    ((4, 6), "rows", False), ((4, 6), "columns", False), ((3, 4), "elements", False), ((3, 2, 2), "all", False),
    ((4, 6), "block:2x3", False), ((5, 7), "block:2x3", True), ((3, 4, 2), "dims:0,2", False),
]


@pytest.mark.parametrize("shape,groups,ragged", SPECS)
@pytest.mark.parametrize("p", [1.0, 2.0, math.inf])
def test_group_norms_gradcheck(shape, groups, ragged, p):
    # Values well away from 0 and from ties, where the norms are differentiable.
    w = (torch.rand(shape, dtype=D) + 0.5) * torch.where(torch.rand(shape) < 0.5, -1.0, 1.0).to(D)
    w = (w + torch.arange(w.numel(), dtype=D).reshape(shape) * 1e-3).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: R.group_norms(t, groups, p, ragged), (w,))


@pytest.mark.parametrize("shape,groups,ragged", SPECS)
def test_group_sum_and_scale_gradcheck(shape, groups, ragged):
    w = torch.randn(shape, dtype=D, requires_grad=True)
    grid = R.group_grid(shape, groups, ragged)
    s = torch.randn(grid, dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: R.group_sum(t, groups, ragged), (w,))
    assert torch.autograd.gradcheck(lambda t, u: R.group_scale(t, u, groups, ragged), (w, s))


def test_norms_and_penalties_equal_torch_compositions():
    w = torch.randn(8, 5, 3, 3, dtype=D)
    close = lambda a, b: torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)  # noqa: E731
    close(R.group_norms(w, "filters").flatten(), w.reshape(8, -1).norm(dim=1))
    close(R.group_norms(w, "channels").flatten(), w.transpose(0, 1).reshape(5, -1).norm(dim=1))
    close(R.group_norms(w, "kernels", 1.0).flatten(), w.reshape(40, 9).abs().sum(1))
    close(R.group_norms(w, "dims:0,1", math.inf).flatten(), w.abs().amax((0, 1)).flatten())
    close(R.group_sum(w, "block:4x5x3x1").flatten(), w.reshape(2, 4, 1, 5, 1, 3, 3, 1).sum((1, 3, 5, 7)).flatten())
    a, b = w.clone().requires_grad_(), w.clone().requires_grad_()
    R.group_lasso(a, "channels", size_weighted=True).backward()
    (math.sqrt(72) * b.transpose(0, 1).reshape(5, -1).norm(dim=1).sum()).backward()
    close(a.grad, b.grad)
    close(R.elastic_net(w, 0.2), 0.2 * w.abs().sum() + 0.4 * w.pow(2).sum())
    close(R.group_sum_of_squares(w, "kernels"), w.pow(2).sum())


def test_proximal_steps_zero_small_groups_exactly_and_keep_directions():
    w = torch.randn(10, 4, 3, 3, dtype=D)
    w[:3] *= 0.05
    before, norms = w.clone(), w.reshape(10, -1).norm(dim=1)
    R.prox_group_lasso_(w, "filters", 0.5)
    for f in range(10):
        if norms[f] <= 0.5:
            assert bool((w[f] == 0).all())
        else:
            torch.testing.assert_close(w[f], before[f] * (1 - 0.5 / norms[f]), rtol=1e-12, atol=1e-14)
    v = torch.randn(500, dtype=D)
    want = v.sign() * (v.abs() - 0.2).clamp_min(0)
    assert torch.equal(R.prox_l1_(v, 0.2), want)


def test_regularizer_on_a_model_prox_and_report():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(6 * 4 * 4, 3))
    reg = R.Regularizer.from_json('{"rules": [{"target": "type:Conv2d", "penalty": "group_lasso", '
                                  '"groups": "filters", "lambda": 0.5}]}')
    want = 0.5 * model[0].weight.reshape(6, -1).norm(dim=1).sum()
    torch.testing.assert_close(reg.penalty(model), want)
    reg.prox_step(model, 10.0)  # step 5 ≥ every filter's norm: all zero
    report = R.sparsity_report(model)
    assert report["layers"][0]["name"] == "0.weight"
    assert report["layers"][0]["zero_filters"] == 1.0
    assert report["layers"][0]["zero_rows"] is None
    assert report["layers"][1]["zero_filters"] == 0.0
    l1 = R.Regularizer([{"target": "*", "penalty": "l1", "lambda": 1.0}])
    torch.testing.assert_close(l1.penalty(model), model[3].weight.abs().sum())  # conv weight is 0 now


def test_bad_input_gives_clear_errors():
    conv = torch.randn(8, 4, 3, 3)
    with pytest.raises(RuntimeError, match=r"groups 'rows' need a 2-D weight, got a weight of shape \[8, 4, 3, 3\]"):
        R.group_norms(conv, "rows")
    with pytest.raises(RuntimeError, match="tile size 3 does not divide dim 0 of size 8"):
        R.group_norms(conv, "block:3x2x3x3")
    assert list(R.group_norms(conv, "block:3x2x3x3", ragged=True).shape) == [3, 2, 1, 1]
    with pytest.raises(ValueError, match="lambda must be finite and >= 0, got -1"):
        R.Regularizer([{"penalty": "l1", "lambda": -1}])
    with pytest.raises(ValueError, match="unknown field 'lamda'"):
        R.Regularizer([{"lamda": 1}])
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3))
    with pytest.raises(ValueError, match="target 'conv9.weight' matches no parameter; the model has: 0.weight"):
        R.Regularizer([{"target": "conv9.weight", "penalty": "l1", "lambda": 1}]).penalty(model)
    with pytest.raises(ValueError, match=r"parameter '0.weight' \(shape \[4, 1, 3, 3\]\).*'columns' need a 2-D"):
        R.Regularizer([{"target": "0.weight", "groups": "columns", "lambda": 1}]).penalty(model)
    leaf = torch.randn(4, 4, requires_grad=True)
    with pytest.raises(RuntimeError, match="must run under no_grad"):
        R.group_scale_(leaf, torch.ones(4, 1), "rows")
    with pytest.raises(RuntimeError, match="double backward"):
        w = torch.randn(3, 4, dtype=D, requires_grad=True)
        (g,) = torch.autograd.grad(R.group_lasso(w, "rows"), w, create_graph=True)
        g.sum().backward()


def test_fused_group_lasso_gradient_equals_autograd_and_names_bad_grads():
    torch.manual_seed(6)
    w = torch.randn(6, 5, 3, 3, dtype=D)
    leaf = w.clone().requires_grad_()
    expected = 0.5 * R.group_lasso(leaf, "channels", size_weighted=True)
    expected.backward()
    grad = torch.ones_like(w)
    value = R.add_group_lasso_grad_(grad, w, "channels", 0.5, size_weighted=True)
    assert abs(value - expected.item()) < 1e-10
    assert torch.allclose(grad - 1, leaf.grad, rtol=1e-10, atol=1e-12)
    # The Regularizer's fused path equals penalty() + backward on a model.
    torch.manual_seed(7)
    a = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4, 2))
    b = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4, 2))
    b.load_state_dict(a.state_dict())
    reg = R.Regularizer([{"target": "type:Conv2d", "penalty": "group_lasso", "lambda": 0.1},
                         {"target": "type:Linear", "penalty": "l1", "lambda": 0.2}])
    pa = reg.penalty(a)
    pa.backward()
    pb = reg.add_gradients(b)
    assert abs(pa.item() - pb) < 1e-5
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        if p.grad is None:
            assert q.grad is None, name
        else:
            assert torch.allclose(p.grad, q.grad, rtol=1e-5, atol=1e-6), name
    with pytest.raises(RuntimeError, match=r"group_lasso_grad_: grad must have the weight's shape \[6, 5, 3, 3\]"):
        R.add_group_lasso_grad_(torch.zeros(6, 5), w)
    with pytest.raises(RuntimeError, match="scale must be finite and >= 0, got -1"):
        R.add_group_lasso_grad_(torch.zeros_like(w), w, scale=-1)
