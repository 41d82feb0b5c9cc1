"""The fancy pooling family against independent float64 compositions of PyTorch ops,
float64 gradcheck for every op, sampling statistics, and every bad input the issue names.
"""
import itertools
import math
import os
import sys

import pytest
import torch
import torch.nn.functional as F

import fancy

D = torch.double


def _rand(*shape, positive=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(*shape, generator=g, dtype=D) if positive else torch.randn(*shape, generator=g, dtype=D)
    return x


def _close(a, b, tol=1e-10):
    torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def _windows(x, k, s, p):
    """(N, C, OH, OW, k*k) windows with padded cells as NaN (to be excluded)."""
    xp = F.pad(x, (p, p, p, p), value=float("nan"))
    u = xp.unfold(2, k, s).unfold(3, k, s)
    return u.reshape(*u.shape[:4], k * k)


# ---------------------------------------------------------------------- SoftPool / LIP
def _softpool_ref(x, k, s, p=0):
    w = _windows(x, k, s, p)
    valid = ~w.isnan()
    w0 = torch.where(valid, w, torch.zeros_like(w))
    m = torch.where(valid, w, torch.full_like(w, -math.inf)).amax(-1, keepdim=True)
    e = torch.where(valid, (w0 - m).exp(), torch.zeros_like(w))
    return (e * w0).sum(-1) / e.sum(-1)


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1), (2, 1, 0)])
def test_soft_pool_forward_backward_match_composition(k, s, p):
    x = _rand(2, 3, 9, 8).requires_grad_()
    xr = x.detach().clone().requires_grad_()
    y = fancy.soft_pool2d(x, k, s, p)
    ref = _softpool_ref(xr, k, s, p)
    _close(y, ref)
    g = _rand(*y.shape, seed=1)
    y.backward(g)
    ref.backward(g)
    _close(x.grad, xr.grad)


@pytest.mark.parametrize("shape,k", [((2, 5, 16, 18), 2), ((2, 5, 15, 17), 2), ((1, 3, 12, 13), 3)])
def test_soft_pool_float32_tiled_windows_match_composition(shape, k):
    """k = stride windows (the path that keeps each window in registers), float32, with
    and without rows/columns that no window covers (their gradient is 0)."""
    x = _rand(*shape).float().requires_grad_()
    y = fancy.soft_pool2d(x, k)
    xr = x.detach().double().requires_grad_()
    ref = _softpool_ref(xr, k, k)
    torch.testing.assert_close(y.double(), ref, rtol=1e-6, atol=1e-6)
    g = _rand(*y.shape, seed=2)
    y.backward(g.float())
    ref.backward(g)
    torch.testing.assert_close(x.grad.double(), xr.grad, rtol=1e-5, atol=1e-6)
    x1 = _rand(3, 4, 21).float()
    torch.testing.assert_close(fancy.soft_pool1d(x1, 2), fancy.soft_pool2d(x1.unsqueeze(2), (1, 2), (1, 2)).squeeze(2))


@pytest.mark.parametrize("k,s,p,w,col", [(2, 2, 0, 6, 2), (3, 2, 1, 6, 2), (2, 2, 0, 40, 21)])
def test_soft_pool_nan_propagates(k, s, p, w, col):
    """w = 40: the NaN sits in the 8-output vector steps of 2×2 float32 rows."""
    x = _rand(1, 2, 6, w).float()
    x[0, 1, 2, col] = float("nan")
    x.requires_grad_()
    y = fancy.soft_pool2d(x, k, s, p)
    ref = fancy.soft_pool2d(torch.where(x.isnan(), torch.zeros_like(x), x), k, s, p)
    nan_out = F.max_pool2d(x.detach(), k, s, p).isnan()  # the windows that hold the NaN
    assert nan_out.any() and torch.equal(y.isnan(), nan_out)
    torch.testing.assert_close(y[~nan_out], ref[~nan_out])
    y.sum().backward()
    if k == s:  # tiled windows: exactly the NaN's window gets NaN gradients
        assert torch.equal(x.grad.isnan(), F.interpolate(nan_out.float(), scale_factor=k).bool())


@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
def test_soft_pool_float32_long_rows_match_composition(scale):
    """2×2 float32 rows of 20 outputs (vector steps of 8 and a tail), values spread wide
    enough that some e^(x − max) flush to 0: forward and gradient against float64."""
    x = (_rand(2, 3, 6, 40, seed=3) * scale).float().requires_grad_()
    y = fancy.soft_pool2d(x, 2)
    xr = x.detach().double().requires_grad_()
    ref = _softpool_ref(xr, 2, 2)
    torch.testing.assert_close(y.double(), ref, rtol=1e-6, atol=1e-6 * scale)
    g = _rand(*y.shape, seed=4)
    y.backward(g.float())
    ref.backward(g)
    torch.testing.assert_close(x.grad.double(), xr.grad, rtol=1e-5, atol=1e-6 * max(1.0, scale))


def test_soft_pool_1d_3d_match_2d_embedding():
    x = _rand(2, 3, 10)
    _close(fancy.soft_pool1d(x, 2), fancy.soft_pool2d(x.unsqueeze(2), (1, 2)).squeeze(2))
    x3 = _rand(1, 2, 4, 6, 6)
    ref = fancy.soft_pool3d(x3, (1, 2, 2))
    _close(ref, torch.stack([fancy.soft_pool2d(x3[:, :, d], 2) for d in range(4)], 2))


def test_soft_pool_gradient_is_w_times_one_plus_a_minus_y():
    x = _rand(1, 1, 2, 2).requires_grad_()
    y = fancy.soft_pool2d(x, 2)
    y.backward()
    w = torch.softmax(x.detach().flatten(), 0).view(1, 1, 2, 2)
    _close(x.grad, w * (1 + x.detach() - y.detach()))


def test_soft_pool_is_finite_for_large_float32_inputs_where_the_composition_is_not():
    x = torch.tensor([[[[1e4, -1e4], [5e3, 1e4]]]], dtype=torch.float32)
    y = fancy.soft_pool2d(x, 2)
    assert torch.isfinite(y).all() and abs(y.item() - 1e4) < 1e-2
    naive = (x.exp() * x).sum() / x.exp().sum()  # the paper's formula, no max subtracted
    assert not torch.isfinite(naive)
    xr = x.clone().requires_grad_()
    fancy.soft_pool2d(xr, 2).backward()
    assert torch.isfinite(xr.grad).all()


def test_lip_pool_matches_composition_and_softpool_is_lip_with_logits_x():
    x = _rand(2, 3, 8, 8).requires_grad_()
    l = _rand(2, 3, 8, 8, seed=2).requires_grad_()
    y = fancy.lip_pool2d(x, l, 2)
    xr, lr = x.detach().clone().requires_grad_(), l.detach().clone().requires_grad_()
    ref = F.avg_pool2d(xr * lr.exp(), 2) / F.avg_pool2d(lr.exp(), 2)
    _close(y, ref)
    g = _rand(*y.shape, seed=3)
    y.backward(g)
    ref.backward(g)
    _close(x.grad, xr.grad)
    _close(l.grad, lr.grad)
    _close(fancy.lip_pool2d(x.detach(), x.detach(), 2), fancy.soft_pool2d(x.detach(), 2))


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1)])
@pytest.mark.parametrize("wants", ["x", "logits"])
def test_lip_pool_gradient_of_one_input_only(k, s, p, wants):
    """Only the input that requires grad gets one (the other is skipped, not computed)."""
    x, l = _rand(2, 3, 9, 8), _rand(2, 3, 9, 8, seed=2)
    (x if wants == "x" else l).requires_grad_()
    xr, lr = x.detach().clone().requires_grad_(), l.detach().clone().requires_grad_()
    y = fancy.lip_pool2d(x, l, k, s, p)
    w = _windows(xr, k, s, p), _windows(lr, k, s, p)
    valid = ~w[0].isnan()
    e = torch.where(valid, w[1], torch.full_like(w[1], -math.inf))
    e = (e - e.amax(-1, keepdim=True)).exp()
    ref = (e * torch.where(valid, w[0], torch.zeros_like(w[0]))).sum(-1) / e.sum(-1)
    _close(y, ref)
    g = _rand(*y.shape, seed=3)
    y.backward(g)
    ref.backward(g)
    if wants == "x":
        assert l.grad is None
        _close(x.grad, xr.grad)
    else:
        assert x.grad is None
        _close(l.grad, lr.grad)


# ---------------------------------------------------------------------- stochastic
def test_stochastic_eval_matches_composition():
    x = _rand(2, 3, 8, 9, positive=True).requires_grad_()
    x.data[0, 0, :2, :2] = 0  # a zero-sum window gives 0 and no gradient
    y = fancy.stochastic_pool2d(x, 2, training=False)
    xr = x.detach().clone().requires_grad_()
    s1 = F.avg_pool2d(xr, 2) * 4
    s2 = F.avg_pool2d(xr * xr, 2) * 4
    ref = torch.where(s1 > 0, s2 / s1.clamp_min(1e-300), torch.zeros_like(s1))
    _close(y, ref)
    g = _rand(*y.shape, seed=4)
    y.backward(g)
    ref.backward(g)
    _close(x.grad, xr.grad)
    assert y[0, 0, 0, 0] == 0 and (x.grad[0, 0, :2, :2] == 0).all()


def test_stochastic_training_routes_gradient_to_sampled_index_and_unpools():
    x = _rand(2, 3, 8, 8, positive=True).requires_grad_()
    gen = torch.Generator().manual_seed(7)
    y, idx = fancy.stochastic_pool2d(x, 2, training=True, return_indices=True, generator=gen)
    _close(y, x.detach().flatten(2).gather(2, idx.flatten(2)).view_as(y))
    g = _rand(*y.shape, seed=5)
    y.backward(g)
    expect = torch.zeros_like(x).flatten(2).scatter_add(2, idx.flatten(2), g.flatten(2)).view_as(x)
    _close(x.grad, expect)
    _close(fancy.max_unpool2d(y.detach(), idx, 2), expect * 0 + torch.zeros_like(x).flatten(2).scatter(
        2, idx.flatten(2), y.detach().flatten(2)).view_as(x))


@pytest.mark.parametrize("k,s,p,ceil", [(2, None, 0, False), (3, 2, 1, False), (2, None, 0, True), (3, 3, 0, False)])
def test_stochastic_backward_finds_the_forward_picks_without_indices(k, s, p, ceil):
    """Without return_indices nothing but x is kept: the backward draws the picks again
    from x and the seed. Its gradient must equal the scatter of the indices that the same
    generator state gives, on tiled, overlapping and partial windows, for 1 and 2 threads."""
    x = _rand(2, 3, 11, 12, positive=True, seed=8)
    x[0, 0, :4, :4] = 0  # zero-sum windows pass no gradient
    _, idx = fancy.stochastic_pool2d(x, k, s, p, ceil, training=True, return_indices=True,
                                     generator=torch.Generator().manual_seed(21))
    for threads in (1, 2):
        torch.set_num_threads(threads)
        xg = x.clone().requires_grad_()
        y = fancy.stochastic_pool2d(xg, k, s, p, ceil, training=True, generator=torch.Generator().manual_seed(21))
        g = _rand(*y.shape, seed=9)
        y.backward(g)
        live = (y.detach() > 0).to(D)
        expect = torch.zeros_like(x).flatten(2).scatter_add(2, idx.flatten(2), (g * live).flatten(2)).view_as(x)
        torch.testing.assert_close(xg.grad, expect, rtol=0, atol=1e-15)
    torch.set_num_threads(2)


def test_stochastic_backward_refuses_an_input_changed_in_place():
    """The backward reads x again, so autograd's version check must catch x changed in place."""
    x = _rand(1, 2, 8, 8, positive=True).requires_grad_()
    h = x * 1
    y = fancy.stochastic_pool2d(h, 2, training=True, generator=torch.Generator().manual_seed(1))
    h.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_stochastic_sampling_frequencies_match_p():
    # One 2x2 window with p = a / sum(a), 200k draws: chi-square with 3 dof.
    a = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=D)
    x = a.view(1, 1, 2, 2).expand(1, 200_000, 2, 2).contiguous()
    _, idx = fancy.stochastic_pool2d(x, 2, training=True, return_indices=True,
                                     generator=torch.Generator().manual_seed(11))
    counts = torch.bincount(idx.flatten(), minlength=4).double()
    expected = a / a.sum() * counts.sum()
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 16.27, f"chi-square {chi2:.2f} over the 0.1% critical value 16.27 (3 dof); counts {counts}"


def test_stochastic_same_seed_same_result_for_any_thread_count():
    x = _rand(4, 8, 32, 32, positive=True).float()
    outs = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        outs.append(fancy.stochastic_pool2d(x, 3, 2, 1, training=True, return_indices=True,
                                            generator=torch.Generator().manual_seed(3)))
    torch.set_num_threads(2)
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])


@pytest.mark.parametrize("training", [True, False])
def test_stochastic_tiled_and_general_windows_pick_the_same(training):
    """A 2-row input of odd width: with ceil_mode=False the windows tile it (the register
    path), with ceil_mode=True the last window is partial (the general path). One output
    row, so the draws line up: the full windows must agree in value, index and gradient."""
    for seed in range(20):
        x = _rand(1, 1, 2, 41, positive=True, seed=seed).float()
        x[..., 4:8] = 0  # a zero-sum window
        outs, grads = [], []
        for ceil in (False, True):
            xg = x.clone().requires_grad_()
            gen = torch.Generator().manual_seed(seed)
            y, i = fancy.stochastic_pool2d(xg, 2, ceil_mode=ceil, training=training, return_indices=training,
                                           generator=gen) if training else (
                fancy.stochastic_pool2d(xg, 2, ceil_mode=ceil, training=False), None)
            y[..., :20].sum().backward()
            outs.append((y[..., :20], None if i is None else i[..., :20]))
            grads.append(xg.grad[..., :40])
        assert torch.equal(outs[0][0], outs[1][0])
        if training:
            assert torch.equal(outs[0][1], outs[1][1])
        torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=0)


def test_stochastic_refuses_negative_activations():
    x = _rand(1, 1, 4, 4)
    with pytest.raises(RuntimeError, match="non-negative activations.*holds -"):
        fancy.stochastic_pool2d(x, 2)
    with pytest.raises(RuntimeError, match="non-negative activations.*holds -"):
        fancy.stochastic_pool2d(x, 3, 2, 1, training=True)  # the general (overlapping windows) path
    xn = _rand(1, 1, 4, 4, positive=True)
    xn[0, 0, 3, 3] = float("nan")
    with pytest.raises(RuntimeError, match="non-negative activations.*holds NaN"):
        fancy.stochastic_pool2d(xn, 2, training=True)


# ---------------------------------------------------------------------- k-max
def _kmax_ref(x, k, dim):
    idx = x.topk(k, dim).indices.sort(dim).values
    return x.gather(dim, idx), idx


@pytest.mark.parametrize("dim", [-1, 1])
def test_kmax_matches_topk_sort_gather(dim):
    x = _rand(3, 20, 30).requires_grad_()
    v, i = fancy.kmax_pool(x, 5, dim)
    xr = x.detach().clone().requires_grad_()
    rv, ri = _kmax_ref(xr, 5, dim)
    assert torch.equal(i, ri)
    _close(v, rv)
    g = _rand(*v.shape, seed=6)
    v.backward(g)
    rv.backward(g)
    _close(x.grad, xr.grad)


def test_kmax_ties_keep_earlier_positions():
    x = torch.tensor([[1.0, 3.0, 2.0, 3.0, 3.0, 0.0]], dtype=D)
    v, i = fancy.kmax_pool(x, 2)
    assert i.tolist() == [[1, 3]] and v.tolist() == [[3.0, 3.0]]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kmax_random_ties_and_nan_against_a_plain_reference(dtype):
    """Quantised values (many ties) or continuous ones, ±inf, NaN in some rows only; k on
    both sides of every path's limit (rows of 64+ floats without NaN take the bound-and-
    rank path, up to k = 64; the others the exact scan)."""
    g = torch.Generator().manual_seed(12)
    cases = ((7, 3), (50, 5), (64, 1), (64, 64), (70, 9), (100, 31), (100, 33), (129, 16), (300, 64), (300, 65),
             (400, 5), (1000, 16))
    for L, k in cases:
        for quantised in (True, False):
            x = torch.randint(0, 6, (6, L), generator=g).to(dtype) if quantised else torch.randn(6, L, generator=g,
                                                                                                  dtype=dtype)
            x[0, torch.rand(L, generator=g) < 0.03] = float("nan")  # rows 0, 1 and 4 hold NaN
            x[1, L // 2] = float("nan")
            x[4, max(L - 9, 0)] = float("nan")  # in a whole vector past the last 64-value step, for most L
            x[2, :3] = float("inf")
            x[3, -5:] = -float("inf")
            v, i = fancy.kmax_pool(x, k)
            for r in range(6):
                row = x[r].tolist()
                key = [(0 if math.isnan(a) else 1, -(0 if math.isnan(a) else a), j) for j, a in enumerate(row)]
                expect = sorted(j for _, _, j in sorted(key)[:k])
                assert i[r].tolist() == expect, (L, k, r, quantised)
                torch.testing.assert_close(v[r], x[r, expect], equal_nan=True)


def test_kmax_backward_of_a_large_input_is_exact():
    """A gradient of 4 MB or more is built row by row and streamed out (non-temporal
    stores, plain ones for each row's unaligned head and tail: rows of 1001 floats start
    at every alignment); it must equal scattering grad_output into zeros. Two threads (as
    everywhere here): a row's outputs must not spill into the next thread's first row."""
    g = torch.Generator().manual_seed(13)
    x = torch.randn(1100, 1001, generator=g).requires_grad_()
    v, i = fancy.kmax_pool(x, 7)
    rv, ri = _kmax_ref(x.detach(), 7, -1)
    assert torch.equal(i, ri) and torch.equal(v, rv)
    go = torch.randn(v.shape, generator=g)
    v.backward(go)
    assert torch.equal(x.grad, torch.zeros(x.shape).scatter_(-1, ri, go))


def test_dynamic_kmax_never_selects_padding_and_reports_lengths():
    x = _rand(3, 4, 12)
    x[1, :, 5:] = 100.0  # padding of a length-5 sequence: must never be chosen
    lengths = torch.tensor([12, 5, 2])
    v, i, kept = fancy.dynamic_kmax_pool(x, layer=1, num_layers=3, k_top=3, lengths=lengths)
    # k = max(3, ceil(2/3 * s)): 8 for s = 12, 4 for s = 5, 3 for s = 2 (only 2 exist)
    assert kept.tolist() == [8, 4, 2] and v.shape == (3, 4, 8)
    for b, n in enumerate([12, 5, 2]):
        rv, ri = _kmax_ref(x[b, :, :n], int(kept[b]), -1)
        _close(v[b, :, :kept[b]], rv)
        assert torch.equal(i[b, :, :kept[b]], ri)
        assert (v[b, :, kept[b]:] == 0).all() and (i[b, :, kept[b]:] == -1).all()


# ---------------------------------------------------------------------- sort pooling
def test_sort_pool_matches_composition_and_one_weight_is_max_pool():
    x = _rand(2, 3, 8, 8).requires_grad_()
    w = torch.tensor([0.3, -0.2, 0.1], dtype=D, requires_grad=True)
    y = fancy.sort_pool2d(x, w, 2)
    xr, wr = x.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    ref = (_windows(xr, 2, 2, 0).sort(-1, descending=True).values[..., :3] * wr.softmax(0)).sum(-1)
    _close(y, ref)
    g = _rand(*y.shape, seed=8)
    y.backward(g)
    ref.backward(g)
    _close(x.grad, xr.grad)
    _close(w.grad, wr.grad)
    one = fancy.sort_pool2d(x.detach(), torch.zeros(1, dtype=D), 3, 2)
    _close(one, F.max_pool2d(x.detach(), 3, 2))


@pytest.mark.parametrize("k,s", [(2, 2), (3, 3), (3, 2)])
def test_sort_pool_ranks_ties_and_nan_against_a_plain_reference(k, s):
    """Quantised values (many ties) and NaN, tiled (k = s) and overlapping windows: the
    output and both gradients (the backward ranks the windows again, nothing stored)
    equal a plain sort's top 3 (NaN largest, ties to the earlier offset)."""
    g = torch.Generator().manual_seed(5)
    x = torch.randint(-2, 3, (2, 3, 9, 10), generator=g).float()
    x[torch.rand(x.shape, generator=g) < 0.05] = float("nan")
    w = torch.tensor([0.5, 0.3, 0.2])
    xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()
    y = torch.ops.fancy.sort_pool2d_forward(xg, wg, [k, k], [s, s])
    go = torch.rand(y.shape, generator=g)
    y.backward(go)
    win = x.unfold(2, k, s).unfold(3, k, s).reshape(*y.shape, k * k)
    expect_gx = torch.zeros(x.shape, dtype=torch.float64)
    expect_gw = [0.0, 0.0, 0.0]
    for n, c, oh, ow in itertools.product(*(range(d) for d in y.shape)):
        vals = win[n, c, oh, ow].tolist()
        order = sorted(range(k * k), key=lambda t: (0 if math.isnan(vals[t]) else 1,
                                                    -(0 if math.isnan(vals[t]) else vals[t]), t))[:3]
        expect = sum(wj * vals[t] for wj, t in zip(w.tolist(), order))
        got = y[n, c, oh, ow].item()
        assert (math.isnan(got) and math.isnan(expect)) or abs(got - expect) < 1e-6
        gr = go[n, c, oh, ow].item()
        for j, t in enumerate(order):
            expect_gx[n, c, oh * s + t // k, ow * s + t % k] += gr * w[j].item()
            expect_gw[j] += gr * vals[t]
    torch.testing.assert_close(xg.grad.double(), expect_gx, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(wg.grad.double(), torch.tensor(expect_gw, dtype=torch.float64), rtol=1e-5,
                               atol=1e-5, equal_nan=True)


# ---------------------------------------------------------------------- mixed, gated, GeM
@pytest.mark.parametrize("k,s,p,shape,cl", [
    (2, None, 0, (2, 3, 8, 8), False),    # tiled: the fused kernel
    (3, None, 0, (2, 3, 10, 11), True),   # tiled, rows/columns no window covers, channels-last
    (3, 2, 1, (2, 3, 9, 8), False),       # overlapping: the composition
])
def test_mixed_pool_learnable_alpha_scalar_and_per_channel(k, s, p, shape, cl):
    x0 = _rand(*shape)
    x0[0, 1, 1, 1] = x0[0, 1, 0, 0]  # a tie inside a window
    for alpha in (torch.tensor(0.3, dtype=D), torch.tensor([0.1, 0.5, 0.9], dtype=D)):
        x = (x0.contiguous(memory_format=torch.channels_last) if cl else x0.clone()).requires_grad_()
        a = alpha.clone().requires_grad_()
        y = fancy.mixed_pool2d(x, a, k, s, p)
        xr, ar = x0.clone().requires_grad_(), alpha.clone().requires_grad_()
        av = ar.view(-1, 1, 1) if ar.dim() else ar
        ref = av * F.max_pool2d(xr, k, s, p) + (1 - av) * F.avg_pool2d(xr, k, s, p)
        _close(y, ref)
        g = _rand(*y.shape, seed=6)
        y.backward(g)
        ref.backward(g)
        _close(a.grad, ar.grad)
        _close(x.grad, xr.grad)
        assert x.grad.is_contiguous(memory_format=torch.channels_last) == cl
    x32 = x0.float()
    torch.testing.assert_close(fancy.mixed_pool2d(x32, torch.tensor(0.3), k, s, p),
                               0.3 * F.max_pool2d(x32, k, s, p) + 0.7 * F.avg_pool2d(x32, k, s, p))


def test_mixed_pool_1d_3d_and_nan_follow_max_pooling():
    x = _rand(2, 3, 11).requires_grad_()
    y = fancy.mixed_pool1d(x, torch.tensor(0.25, dtype=D), 2)
    xr = x.detach().clone().requires_grad_()
    ref = 0.25 * F.max_pool1d(xr, 2) + 0.75 * F.avg_pool1d(xr, 2)
    _close(y, ref)
    y.backward(torch.ones_like(y))
    ref.backward(torch.ones_like(ref))
    _close(x.grad, xr.grad)
    x3 = _rand(1, 2, 3, 4, 6)
    _close(fancy.mixed_pool3d(x3, torch.tensor(0.6, dtype=D), (1, 2, 2)),
           0.6 * F.max_pool3d(x3, (1, 2, 2)) + 0.4 * F.avg_pool3d(x3, (1, 2, 2)))
    xn = _rand(1, 1, 4, 4)
    xn[0, 0, 0, 1] = float("nan")
    yn = fancy.mixed_pool2d(xn, torch.tensor(0.5, dtype=D), 2)
    assert yn[0, 0, 0, 0].isnan() and not yn[0, 0, 1:, :].isnan().any()


def test_mixed_pool_random_mode_picks_max_or_avg_per_window():
    x = _rand(2, 3, 8, 8)
    y = fancy.mixed_pool2d(x, 0.0, 2, training=True, random=True, generator=torch.Generator().manual_seed(1))
    mx, av = F.max_pool2d(x, 2), F.avg_pool2d(x, 2)
    is_max, is_avg = (y == mx), (y == av)
    assert (is_max | is_avg).all() and is_max.any() and is_avg.any()
    _close(fancy.mixed_pool2d(x, 0.0, 2, training=False, random=True), (mx + av) / 2)
    # The gradient follows each window's draw: max pooling's where it picked max, else the mean's.
    xg = x.clone().requires_grad_()
    fancy.mixed_pool2d(xg, 0.0, 2, training=True, random=True, generator=torch.Generator().manual_seed(1)).sum().backward()
    xr = x.clone().requires_grad_()
    pick = is_max.to(D)
    (pick * F.max_pool2d(xr, 2) + (1 - pick) * F.avg_pool2d(xr, 2)).sum().backward()
    _close(xg.grad, xr.grad)


def test_gated_pool_matches_composition():
    x = _rand(2, 3, 8, 8).requires_grad_()
    gate = _rand(2, 2, seed=9).requires_grad_()
    y = fancy.gated_pool2d(x, gate, 2)
    xr, gr = x.detach().clone().requires_grad_(), gate.detach().clone().requires_grad_()
    s = torch.sigmoid((_windows(xr, 2, 2, 0) * gr.flatten()).sum(-1))
    ref = s * F.max_pool2d(xr, 2) + (1 - s) * F.avg_pool2d(xr, 2)
    _close(y, ref)
    y.sum().backward()
    ref.sum().backward()
    _close(gate.grad, gr.grad)
    _close(x.grad, xr.grad)


def test_gem_matches_composition_global_and_windowed():
    x = _rand(2, 3, 8, 8)
    p = torch.tensor(3.0, dtype=D, requires_grad=True)
    pr = p.detach().clone().requires_grad_()
    y = fancy.gem_pool(x, p)
    ref = x.clamp(min=1e-6).pow(pr).mean((2, 3)).pow(1 / pr)
    _close(y, ref)
    y.sum().backward()
    ref.sum().backward()
    _close(p.grad, pr.grad)
    _close(fancy.gem_pool(x, 2.0, kernel_size=2), F.avg_pool2d(x.clamp(min=1e-6) ** 2, 2) ** 0.5)
    _close(fancy.gem_pool(x.abs(), 1.0), x.abs().clamp(min=1e-6).mean((2, 3)))  # p = 1: average
    assert fancy.gem_pool(x[0], 3.0, kernel_size=2).shape == (3, 4, 4)  # int: a square 2-D window
    _close(fancy.gem_pool(x[:, :, 0], 1.0, kernel_size=[2]), F.avg_pool1d(x[:, :, 0].clamp(min=1e-6), 2))


@pytest.mark.parametrize("shape,cl", [((2, 3, 9, 7), False), ((2, 3, 8, 8), True), ((2, 3, 4, 5, 3), False),
                                      ((2, 3, 23, 29), False)])  # rows of several 256-value blocks
def test_gem_global_fused_matches_composition(shape, cl):
    """Global GeM runs one fused pass (z^p as exp(p ln z), or products for p = 1..4): float64 to 1e-10, float32 to
    float32's precision, gradients to x and p, values below eps clamped (no gradient)."""
    x0 = _rand(*shape).abs()
    x0.view(-1)[::7] = -0.5  # clamped to eps
    for keepdim, pv in itertools.product((False, True), (2.5, 1.0, 3.0)):  # whole p: z^p by multiplication
        x = (x0.contiguous(memory_format=torch.channels_last) if cl else x0.clone()).requires_grad_()
        p = torch.tensor(pv, dtype=D, requires_grad=True)
        y = fancy.gem_pool(x, p, keepdim=keepdim)
        xr, pr = x0.clone().requires_grad_(), p.detach().clone().requires_grad_()
        dims = tuple(range(2, x0.dim()))
        ref = xr.clamp(min=1e-6).pow(pr).mean(dims, keepdim=keepdim).pow(1 / pr)
        _close(y, ref)
        g = _rand(*y.shape, seed=12)
        y.backward(g)
        ref.backward(g)
        _close(x.grad, xr.grad)
        _close(p.grad, pr.grad)
    x32 = x0.float()
    torch.testing.assert_close(fancy.gem_pool(x32, torch.tensor(3.0)).double(),
                               x0.clamp(min=1e-6).pow(3).mean(tuple(range(2, x0.dim()))).pow(1 / 3),
                               rtol=2e-6, atol=1e-7)
    for pv in (2.5, 0.7, 6.3):  # float32 z^p as 2^(p·log2 z) in vector lanes: value and ∂p
        p32, p64 = torch.tensor(pv, requires_grad=True), torch.tensor(pv, dtype=D, requires_grad=True)
        y32 = fancy.gem_pool(x32, p32)
        ref = x0.clamp(min=1e-6).pow(p64).mean(tuple(range(2, x0.dim()))).pow(1 / p64)
        torch.testing.assert_close(y32.double(), ref.detach(), rtol=2e-6, atol=1e-7)
        y32.sum().backward()
        ref.sum().backward()
        torch.testing.assert_close(p32.grad.double(), p64.grad, rtol=1e-5, atol=1e-6)
    xn = x0.clone()
    xn[0, 0].view(-1)[0] = float("nan")
    yn = fancy.gem_pool(xn, 3.0)
    assert yn[0, 0].isnan() and not yn.view(-1)[1:].isnan().any()
    xi = x0.float()  # +inf in float32 (the vector path hands such blocks to the portable loop)
    xi[1, 2].view(-1)[3] = float("inf")
    yi = fancy.gem_pool(xi, 3.0)
    assert yi[1, 2].isinf() and torch.isfinite(yi.view(-1)[:5]).all()


# ---------------------------------------------------------------------- pyramids and sets
def test_spatial_pyramid_pool_fixed_length_for_any_size():
    for size in ((13, 17), (32, 20)):
        x = _rand(2, 3, *size)
        y = fancy.spatial_pyramid_pool2d(x, (1, 2, 4))
        ref = torch.cat([F.adaptive_max_pool2d(x, n).flatten(1) for n in (1, 2, 4)], 1)
        assert y.shape == (2, 3 * 21)
        _close(y, ref)
    _close(fancy.spatial_pyramid_pool2d(x, (1, 3), "avg"),
           torch.cat([F.adaptive_avg_pool2d(x, n).flatten(1) for n in (1, 3)], 1))


def test_set_pool_modes_and_lengths():
    x = _rand(3, 7, 4, 5)
    _close(fancy.set_pool(x, 1, "max"), x.max(1).values)
    _close(fancy.set_pool(x, 1, "mean"), x.mean(1))
    _close(fancy.set_pool(x, 1, "median"), x.median(1).values)
    lengths = torch.tensor([7, 3, 1])
    y = fancy.set_pool(x, 1, "mean", lengths)
    for b, n in enumerate(lengths.tolist()):
        _close(y[b], x[b, :n].mean(0))


def test_horizontal_pyramid_pool_is_gaitset_strips():
    x = _rand(2, 3, 16, 11)
    y = fancy.horizontal_pyramid_pool(x, (1, 2, 4, 8, 16))
    parts = []
    for b in (1, 2, 4, 8, 16):
        z = x.view(2, 3, b, -1)  # GaitSet: strips over the flattened H x W
        parts.append(z.mean(-1) + z.max(-1).values)
    _close(y, torch.cat(parts, -1))


# ---------------------------------------------------------------------- gradcheck
def test_float64_gradcheck_every_op():
    gc = torch.autograd.gradcheck
    x = _rand(1, 2, 6, 6).requires_grad_()
    xp = (_rand(1, 2, 6, 6, positive=True) + 0.1).requires_grad_()
    assert gc(lambda t: fancy.soft_pool2d(t, 3, 2, 1, ceil_mode=True), (x,))
    assert gc(lambda t: fancy.soft_pool1d(t, 2), (_rand(1, 2, 7).requires_grad_(),))
    assert gc(lambda t: fancy.soft_pool3d(t, 2), (_rand(1, 1, 4, 4, 4).requires_grad_(),))
    assert gc(lambda t, l: fancy.lip_pool2d(t, l, 2), (x, _rand(1, 2, 6, 6, seed=3).requires_grad_()))
    assert gc(lambda t: fancy.stochastic_pool2d(t, 2, training=False), (xp,))
    assert gc(lambda t: fancy.stochastic_pool2d(t, 2, training=True, generator=torch.Generator().manual_seed(0)),
              (xp,))
    assert gc(lambda t: fancy.kmax_pool(t, 3)[0], (x,))
    assert gc(lambda t, w: fancy.sort_pool2d(t, w, 2), (x, _rand(3, seed=4).requires_grad_()))
    assert gc(lambda t, a: fancy.mixed_pool2d(t, a, 2), (x, torch.tensor([0.2, 0.7], dtype=D, requires_grad=True)))
    assert gc(lambda t, a: fancy.mixed_pool2d(t, a, 3), (x, torch.tensor(0.4, dtype=D, requires_grad=True)))
    assert gc(lambda t: fancy.soft_pool2d(t, 2), (x,))
    assert gc(lambda t, q: fancy.gem_pool(t, q), (x.detach().abs().requires_grad_(),
                                                  torch.tensor(2.5, dtype=D, requires_grad=True)))
    assert gc(lambda t, g: fancy.gated_pool2d(t, g, 2), (x, _rand(2, 2, seed=5).requires_grad_()))
    assert gc(lambda t, p: fancy.gem_pool(t, p), (xp, torch.tensor(2.5, dtype=D, requires_grad=True)))
    assert gc(lambda t: fancy.spatial_pyramid_pool2d(t, (1, 2), "avg"), (x,))
    assert gc(lambda t: fancy.set_pool(t, 1, "mean", torch.tensor([2])), (x,))
    assert gc(lambda t: fancy.horizontal_pyramid_pool(t, (1, 2, 3)), (x,))
    assert gc(lambda t: fancy.dynamic_kmax_pool(t.view(1, 2, 36), 1, 2, 3)[0], (x,))


# ---------------------------------------------------------------------- modules
def test_modules_reach_the_same_ops():
    x = _rand(2, 3, 8, 8)
    _close(fancy.nn.SoftPool2d(2)(x), fancy.soft_pool2d(x, 2))
    m = fancy.nn.StochasticPool2d(2).eval()
    _close(m(x.abs()), fancy.stochastic_pool2d(x.abs(), 2, training=False))
    gem = fancy.nn.GeM().double()
    _close(gem(x.abs()), fancy.gem_pool(x.abs(), 3.0))
    sp = fancy.nn.SortPool2d(2, ranks=1)
    _close(sp(x), F.max_pool2d(x, 2))
    assert fancy.nn.MixedPool2d(2, channels=3).alpha.shape == (3,)
    assert fancy.nn.HorizontalPyramidPool((1, 2))(x).shape == (2, 3, 3)


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call,message", [
    (lambda: fancy.kmax_pool(_rand(2, 5), 0), r"kmax_pool: k must be at least 1, got 0"),
    (lambda: fancy.gem_pool(_rand(3, 5), 3.0), r"gem_pool: global pooling needs an \(N, C, \*spatial\) input"),
    (lambda: fancy.kmax_pool(_rand(2, 5), 6), r"kmax_pool: k = 6 is larger than dim -1 of the input \(size 5\)"),
    (lambda: fancy.dynamic_kmax_pool(_rand(2, 3, 5), 1, 2, 2, torch.tensor([5, 6])),
     r"lengths\[1\] = 6 is outside \[1, 5\]"),
    (lambda: fancy.dynamic_kmax_pool(_rand(2, 3, 5), 1, 2, 2, torch.tensor([5, 0])),
     r"lengths\[1\] = 0 is outside \[1, 5\]"),
    (lambda: fancy.dynamic_kmax_pool(_rand(2, 3, 5), 1, 2, 2, torch.tensor([5, 5, 5])),
     r"lengths must have shape \[2\]"),
    (lambda: fancy.dynamic_kmax_pool(_rand(2, 3, 5), 3, 2, 2), r"layer must be in \[1, num_layers = 2\], got 3"),
    (lambda: fancy.dynamic_kmax_pool(_rand(2, 3, 5), 1, 2, 0), r"k_top must be at least 1, got 0"),
    (lambda: fancy.set_pool(_rand(2, 4, 3), 1, "mean", torch.tensor([4, 0])),
     r"lengths\[1\] = 0 is outside \[1, 4\]; an empty set has no mean"),
    (lambda: fancy.set_pool(_rand(2, 4, 3), 1, "mean", torch.tensor([[4, 4]])), r"lengths must have shape \[2\]"),
    (lambda: fancy.set_pool(_rand(2, 0, 3), 1), r"set dim 1 is empty"),
    (lambda: fancy.set_pool(_rand(2, 4, 3), 1, "mode"), r"unknown mode 'mode'; expected one of 'max', 'mean', 'median'"),
    (lambda: fancy.spatial_pyramid_pool2d(_rand(1, 2, 8, 8), (1, 2), "min"),
     r"unknown mode 'min'; expected one of 'max', 'avg'"),
    (lambda: fancy.sort_pool2d(_rand(1, 2, 8, 8), torch.zeros(5, dtype=D), 2),
     r"sort_pool2d: 5 weights but a 2x2 window holds only 4 values"),
    (lambda: fancy.sort_pool2d(_rand(1, 2, 8, 8), torch.zeros(2, 2, dtype=D), 2),
     r"weights must be a non-empty 1-D tensor"),
    (lambda: fancy.mixed_pool2d(_rand(1, 3, 8, 8), torch.zeros(2, dtype=D), 2),
     r"alpha must hold one value or one per channel \(3\), got shape \[2\]"),
    (lambda: fancy.gated_pool2d(_rand(1, 3, 8, 8), torch.zeros(3, 3, dtype=D), 2),
     r"gate must have the kernel's shape \[2, 2\], got \[3, 3\]"),
    (lambda: fancy.lip_pool2d(_rand(1, 3, 8, 8), _rand(1, 3, 8, 7), 2), r"logits shape \[1, 3, 8, 7\] must equal"),
    (lambda: fancy.horizontal_pyramid_pool(_rand(1, 3, 8, 8), (1, 9)), r"every bin count must be in \[1, H = 8\], got 9"),
    (lambda: fancy.soft_pool2d(_rand(1, 3, 8, 8), 0), r"soft_pool2d: kernel_size"),
    (lambda: fancy.soft_pool2d(torch.ones(1, 3, 8, 8, dtype=torch.long), 2), r"soft_pool2d: input dtype Long"),
    (lambda: fancy.stochastic_pool2d(_rand(1, 3, 8, 8).abs(), 2, training=False, return_indices=True),
     r"return_indices needs training=True"),
])
def test_bad_input_gives_a_clear_error(call, message):
    with pytest.raises((RuntimeError, ValueError), match=message):
        call()


# ---------------------------------------------------------------------- large buffers
def test_large_outputs_from_the_block_cache_are_independent_and_resizable():
    """Outputs and gradients of 4 MB or more come from a cache of mapped blocks that is
    reused once their tensor dies: live tensors never share a block, a reused block
    carries nothing over, and such a tensor can still grow with resize_."""
    x = torch.randn(16, 64, 64, 64)  # 16 MB in, 4 MB out per 2x2 pool; the gradient is 16 MB
    a = fancy.max_pool2d(x, 2)
    b = fancy.max_pool2d(x * 2, 2)
    assert a.data_ptr() != b.data_ptr()
    torch.testing.assert_close(b, 2 * a)
    ref = F.avg_pool2d(x, 2)
    for _ in range(3):  # the same sizes again: blocks handed back and taken again
        xg = x.clone().requires_grad_()
        y = fancy.avg_pool2d(xg, 2)
        torch.testing.assert_close(y, ref)
        g = torch.randn_like(y)
        y.backward(g)
        torch.testing.assert_close(xg.grad, F.interpolate(g, scale_factor=2) / 4)
        del y, xg
    if os.environ.get("FANCY_LARGE_CACHE") != "0" and sys.platform == "linux":
        p = fancy.max_pool2d(x, 2).data_ptr()  # dies at once: its block is kept ...
        assert fancy.avg_pool2d(x, 2).data_ptr() == p  # ... for the next one it fits
    c = fancy.max_pool2d(x, 2)
    c.resize_(2 * c.numel())  # grows: the data move to malloc'd memory
    torch.testing.assert_close(c[: a.numel()], a.flatten())
    c.resize_(10)
    assert c.numel() == 10
