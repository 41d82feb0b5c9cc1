"""Randomised parity sweep of fancy's classic pooling against PyTorch's own ops.

Forward values and indices must be bit-identical for max, min (against -max(-x)),
adaptive max and unpooling; average, Lp and adaptive average within 1e-6 relative in
float32; gradients equal to PyTorch's. Cases cover 1/2/3-D, odd sizes, channel counts
that are not a multiple of the vector width, dilation, padding, ceil_mode, both memory
formats, and NaN / ±inf values.
"""
import itertools
import math
import random

import pytest
import torch
import torch.nn.functional as F

import fancy

N_CASES = 1200
SEED = 20261126


def _close_sums(actual, expected):
    """Gradients that are sums over overlapping windows: fancy adds them in another order
    than ATen, so a difference of a few float32 roundings of the largest term is allowed
    (an input gathering 7 terms of ~3 can cancel to 0.1 with an error of ~1e-6)."""
    scale = max(1.0, expected.abs().max().item())
    torch.testing.assert_close(actual, expected, rtol=1e-6, atol=1e-6 * scale)


def _random_window(rng, nd):
    k = [rng.randint(1, 6) for _ in range(nd)]  # > 3 takes the column-fold path
    s = [rng.randint(1, 3) for _ in range(nd)]
    d = [rng.randint(1, 2) for _ in range(nd)]
    return k, s, d


def _random_input(rng, nd, k, d, pad, dtype=torch.float32, specials=True):
    n = rng.randint(1, 3)
    c = rng.choice([1, 3, 5, 7, 9, 16, 17])
    spatial = []
    for i in range(nd):
        need = max(1, d[i] * (k[i] - 1) + 1 - 2 * pad[i])
        spatial.append(rng.randint(need, need + 9))
    gen = torch.Generator().manual_seed(rng.randint(0, 2**31))
    x = torch.randn(n, c, *spatial, generator=gen, dtype=dtype)
    if rng.random() < 0.3:  # ties: quantised values
        x = torch.round(x * 2) / 2
    if specials and rng.random() < 0.3:
        flat = x.view(-1)
        for v in (math.nan, math.inf, -math.inf):
            if rng.random() < 0.5:
                flat[rng.randrange(flat.numel())] = v
    if specials and rng.random() < 0.3:
        # At a row's first or last column, or a plane's first element: where clipped edge
        # windows and a window's first row are handled apart (a NaN there was once lost).
        v = rng.choice([math.nan, math.inf, -math.inf, -0.0])
        at = [rng.randrange(size) for size in x.shape]
        at[-1] = rng.choice([0, x.shape[-1] - 1])
        if rng.random() < 0.5:
            at[2:] = [0] * nd
        x[tuple(at)] = v
    if nd >= 2 and rng.random() < 0.4:
        x = x.contiguous(memory_format=torch.channels_last if nd == 2 else torch.channels_last_3d)
    elif rng.random() < 0.1:
        x = x.transpose(-1, -2).contiguous().transpose(-1, -2)  # odd strides
    if rng.random() < 0.1:
        x = x[0]  # unbatched
    return x


def _cases(kind):
    rng = random.Random(SEED + sum(map(ord, kind)))  # str hash is salted per process
    for i in range(N_CASES // 6):
        nd = rng.choice([1, 2, 3])
        k, s, d = _random_window(rng, nd)
        if kind != "max":
            d = [1] * nd
        max_pad = [((kk - 1) * dd + 1) // 2 if nd == 2 else kk // 2 for kk, dd in zip(k, d)]
        if kind != "max":
            max_pad = [kk // 2 for kk in k]
        pad = [rng.randint(0, m) for m in max_pad]
        ceil = rng.random() < 0.5
        yield pytest.param(nd, k, s, pad, d, ceil, rng.randint(0, 2**31), id=f"{kind}{i}")


def _eq(a, b):
    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)


def _eq_indices(idx, ref_idx, out):
    """Indices equal PyTorch's except where a dilated window saw only padding: there
    PyTorch returns an index outside the window (or −1); ours is −1 and the value −inf."""
    empty = idx < 0
    assert bool((out[empty] == -math.inf).all())
    _eq(idx[~empty], ref_idx[~empty])


def _has_empty_window(idx):
    return bool((idx < 0).any())


@pytest.mark.parametrize("nd,k,s,p,d,ceil,seed", list(_cases("max")))
def test_max_and_min_pool(nd, k, s, p, d, ceil, seed):
    rng = random.Random(seed)
    x = _random_input(rng, nd, k, d, p)
    ref_fn = getattr(F, f"max_pool{nd}d")
    try:
        ref, ref_idx = ref_fn(x, k, s, p, d, ceil_mode=ceil, return_indices=True)
    except RuntimeError:
        pytest.skip("PyTorch rejects this configuration")
    out, idx = getattr(fancy, f"max_pool{nd}d")(x, k, s, p, d, ceil, return_indices=True)
    _eq(out, ref)
    _eq_indices(idx, ref_idx, out)
    assert out.is_contiguous(memory_format=torch.channels_last) == x.is_contiguous(
        memory_format=torch.channels_last) or nd != 2
    _eq(getattr(fancy, f"max_pool{nd}d")(x, k, s, p, d, ceil), ref)
    # min pooling against -max(-x)
    mref, midx_ref = ref_fn(-x, k, s, p, d, ceil_mode=ceil, return_indices=True)
    mout, midx = getattr(fancy, f"min_pool{nd}d")(x, k, s, p, d, ceil, return_indices=True)
    _eq(mout, -mref)
    _eq_indices(midx, midx_ref, -mout)
    # unpooling of the max pooling result
    if not _has_empty_window(idx):
        size = x.shape[-nd:]
        try:
            un_ref = getattr(F, f"max_unpool{nd}d")(ref, ref_idx, k, s, p, output_size=size)
        except ValueError:  # the input size is not a valid unpooled size: both refuse it
            with pytest.raises(RuntimeError, match="does not fit"):
                getattr(fancy, f"max_unpool{nd}d")(out, idx, k, s, p, output_size=size)
        else:
            un = getattr(fancy, f"max_unpool{nd}d")(out, idx, k, s, p, output_size=size)
            _eq(un, un_ref)
    # backward (PyTorch's own backward corrupts memory on windows that see only padding)
    if not _has_empty_window(idx):
        g = torch.randn_like(ref)
        xa = x.clone().requires_grad_()
        xb = x.clone().requires_grad_()
        ref_fn(xa, k, s, p, d, ceil_mode=ceil).backward(g)
        getattr(fancy, f"max_pool{nd}d")(xb, k, s, p, d, ceil).backward(g)
        _eq(xb.grad, xa.grad)


@pytest.mark.parametrize("nd,k,s,p,d,ceil,seed", list(_cases("avg")))
def test_avg_pool(nd, k, s, p, d, ceil, seed):
    rng = random.Random(seed)
    x = _random_input(rng, nd, k, d, p)
    cip = rng.random() < 0.5
    div = rng.choice([None, None, 3])
    ref_fn = getattr(F, f"avg_pool{nd}d")
    kwargs = dict(ceil_mode=ceil, count_include_pad=cip)
    if nd > 1:
        kwargs["divisor_override"] = div
    else:
        div = None
    try:
        ref = ref_fn(x, k, s, p, **kwargs)
    except RuntimeError:
        pytest.skip("PyTorch rejects this configuration")
    out = getattr(fancy, f"avg_pool{nd}d")(x, k, s, p, ceil, cip, div)
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6, equal_nan=True)
    xf = x.clone().masked_fill(~torch.isfinite(x), 0.5)
    g = torch.randn_like(ref)
    xa, xb = xf.clone().requires_grad_(), xf.clone().requires_grad_()
    ref_fn(xa, k, s, p, **kwargs).backward(g)
    getattr(fancy, f"avg_pool{nd}d")(xb, k, s, p, ceil, cip, div).backward(g)
    _close_sums(xb.grad, xa.grad)


def _lp_reference(x, nd, p, k, s, ceil):
    """PyTorch's lp_pool on |x| (ours uses |x|); lp_pool3d by the same composition."""
    if math.isinf(p):
        return getattr(F, f"max_pool{nd}d")(x.abs(), k, s, 0, 1, ceil_mode=ceil)
    if nd < 3:
        if nd == 1:  # torch 1.13 lp_pool1d multiplies by kernel_size: it must be an int
            return F.lp_pool1d(x.abs(), p, k[0], s[0], ceil)
        return getattr(F, f"lp_pool{nd}d")(x.abs(), p, k, s, ceil)
    y = F.avg_pool3d(x.abs().pow(p), k, s, 0, ceil)
    return (y * math.prod(k)).pow(1.0 / p)


@pytest.mark.parametrize("nd,k,s,p,d,ceil,seed", list(_cases("lp")))
def test_lp_pool(nd, k, s, p, d, ceil, seed):
    rng = random.Random(seed)
    x = _random_input(rng, nd, k, [1] * nd, [0] * nd, specials=False)
    norm = rng.choice([1.0, 2.0, 3.0, 0.5, 1.7, math.inf])
    try:
        ref = _lp_reference(x, nd, norm, k, s, ceil)
    except RuntimeError:
        pytest.skip("PyTorch rejects this configuration")
    out = getattr(fancy, f"lp_pool{nd}d")(x, norm, k, s, ceil)
    # Against the float64 composition: two float32 results can each be within 1e-6 of the
    # truth and still differ from each other by more (216-term windows, p = 0.5).
    ref64 = _lp_reference(x.double(), nd, norm, k, s, ceil)
    torch.testing.assert_close(out.double(), ref64, rtol=1e-6, atol=1e-6)
    # gradient against the same composition, away from zeros (where |x|^p has no derivative)
    xf = x.double().clamp(min=0.05) * torch.sign(x.double() + 1e-3)
    xa, xb = xf.clone().requires_grad_(), xf.clone().requires_grad_()
    g = torch.randn(ref.shape, dtype=torch.double)
    _lp_reference(xa, nd, norm, k, s, ceil).backward(g)
    getattr(fancy, f"lp_pool{nd}d")(xb, norm, k, s, ceil).backward(g)
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("i", range(N_CASES // 6))
def test_adaptive_pool(i):
    rng = random.Random(SEED * 7 + i)
    nd = rng.choice([1, 2, 3])
    out_size = [rng.randint(1, 7) for _ in range(nd)]
    x = _random_input(rng, nd, [1] * nd, [1] * nd, [0] * nd)
    ref, ref_idx = getattr(F, f"adaptive_max_pool{nd}d")(x, out_size, return_indices=True)
    out, idx = getattr(fancy, f"adaptive_max_pool{nd}d")(x, out_size, return_indices=True)
    _eq(out, ref)
    _eq(idx, ref_idx)
    ref_a = getattr(F, f"adaptive_avg_pool{nd}d")(x, out_size)
    out_a = getattr(fancy, f"adaptive_avg_pool{nd}d")(x, out_size)
    torch.testing.assert_close(out_a, ref_a, rtol=1e-6, atol=1e-6, equal_nan=True)
    xf = x.clone().masked_fill(~torch.isfinite(x), 0.25)
    for kind in ("max", "avg"):
        xa, xb = xf.clone().requires_grad_(), xf.clone().requires_grad_()
        g = torch.randn_like(ref)
        getattr(F, f"adaptive_{kind}_pool{nd}d")(xa, out_size).backward(g)
        getattr(fancy, f"adaptive_{kind}_pool{nd}d")(xb, out_size).backward(g)
        _close_sums(xb.grad, xa.grad)


@pytest.mark.parametrize("i", range(N_CASES // 6))
def test_global_pool(i):
    rng = random.Random(SEED * 11 + i)
    nd = rng.choice([1, 2, 3])
    x = _random_input(rng, nd, [1] * nd, [1] * nd, [0] * nd)
    if x.dim() == nd + 1:
        x = x.unsqueeze(0)
    dims = tuple(range(2, x.dim()))
    keep = rng.random() < 0.5
    torch.testing.assert_close(fancy.global_avg_pool(x, keep), x.mean(dims, keepdim=keep),
                               rtol=1e-6, atol=1e-6, equal_nan=True)
    _eq(fancy.global_max_pool(x, keep), x.amax(dims, keepdim=keep))


def test_global_pool_layouts():
    """Global pooling reads its input in place when it is contiguous or channels-last (any
    spatial rank) and copies any other strides; the output keeps the input's memory format
    with keepdim. With a graph to build it runs the 1-D adaptive ops instead: the same
    values."""
    g = torch.Generator().manual_seed(3)
    base = torch.randn(3, 5, 8, 10, generator=g)
    base.view(-1)[::37] = math.nan
    base.view(-1)[3::41] = -math.inf
    inputs = [base, base.contiguous(memory_format=torch.channels_last), base[:, :, ::2, 1::3],
              base.transpose(2, 3), base[:, 1:4], base.contiguous(memory_format=torch.channels_last)[:, :, 2:5],
              torch.randn(2, 4, 3, 2, 3, 2, generator=g),  # four spatial dims
              torch.randn(2, 6, 3, 4, 5, generator=g).contiguous(memory_format=torch.channels_last_3d),
              torch.randn(2, 7, 9, generator=g).transpose(1, 2).contiguous().transpose(1, 2),  # (N, C, L) channels-last
              torch.randn(0, 3, 4, 4), torch.randn(1, 1, 5, 5, generator=g).double()]
    for x in inputs:
        dims = tuple(range(2, x.dim()))
        for keep in (False, True):
            _eq(fancy.global_max_pool(x, keep), x.amax(dims, keepdim=keep))
            torch.testing.assert_close(fancy.global_avg_pool(x, keep), x.mean(dims, keepdim=keep),
                                       rtol=1e-6, atol=1e-6, equal_nan=True)
        xg = x.detach().requires_grad_()
        _eq(fancy.global_max_pool(xg, True).detach(), fancy.global_max_pool(x, True))
        _eq(fancy.global_avg_pool(xg).detach(), fancy.global_avg_pool(x))
    for x, fmt in ((inputs[1], torch.channels_last), (inputs[7], torch.channels_last_3d)):
        assert fancy.global_max_pool(x, True).is_contiguous(memory_format=fmt)
        assert fancy.global_avg_pool(x, True).is_contiguous(memory_format=fmt)
    for op in (fancy.global_max_pool, fancy.global_avg_pool):  # the rank rule, with and without a graph
        for t in (torch.randn(3, 4), torch.randn(3, 4, requires_grad=True)):
            with pytest.raises(RuntimeError, match=r"global_(max|avg)_pool: input must be \(N, C, \*spatial\) with at least one spatial dim"):
                op(t)
    xb = base.nan_to_num(0.0, 0.0, 0.0).bfloat16()
    torch.testing.assert_close(fancy.global_avg_pool(xb).float(), xb.float().mean((2, 3)), rtol=1e-2, atol=1e-2)
    _eq(fancy.global_max_pool(xb), xb.amax((2, 3)))


def test_whole_span_sums_every_length():
    """Global and 1-wide adaptive sums fold a span in 32 lanes with a masked remainder
    (AVX2: sum_lanes_avx2): every length around the lane counts, and a value that only the
    remainder reads (the last one) must count."""
    g = torch.Generator().manual_seed(5)
    for n in list(range(1, 72)) + [784, 1000]:
        x = torch.randn(2, 3, n, generator=g)
        x64 = x.double()
        torch.testing.assert_close(fancy.global_avg_pool(x).double(), x64.mean(2), rtol=1e-6, atol=1e-6)
        for p in (1.0, 2.0):
            torch.testing.assert_close(fancy.lp_pool1d(x, p, n).double(), x64.abs().pow(p).sum(2, keepdim=True).pow(1 / p),
                                       rtol=1e-6, atol=1e-6)
        x[0, 0, -1] = float("inf")
        x[0, 1, -1] = float("nan")
        y = fancy.global_avg_pool(x)
        assert y[0, 0] == float("inf") and y[0, 1].isnan() and y[1].isfinite().all(), n


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_adaptive_avg_short_rows(dtype):
    """Contiguous adaptive average whose windows hold 1-4 input rows of at most 256 values
    sums them in its own loop (adaptive_avg_short_row), unrolled where every window is 2, 3
    or 4 columns wide: uniform and uneven windows, more outputs than inputs, the 256-value
    limit and one past it, 2-D and 3-D, NaN and +-inf, against ATen in float64."""
    g = torch.Generator().manual_seed(11)
    cases = [((28, 28), (7, 7)), ((28, 28), (14, 14)), ((21, 21), (7, 7)), ((16, 12), (8, 6)),
             ((10, 9), (4, 7)), ((3, 5), (7, 6)), ((8, 256), (4, 64)), ((8, 257), (4, 7)),
             ((4, 6, 6), (2, 3, 2)), ((2, 12, 9), (2, 4, 3))]
    for size, out in cases:
        nd = len(size)
        x = torch.randn(2, 3, *size, generator=g, dtype=dtype)
        x[0, 1].view(-1)[5] = math.nan
        x[1, 2].view(-1)[-1] = math.inf
        x[1, 0].view(-1)[0] = -math.inf
        pool = getattr(F, f"adaptive_avg_pool{nd}d")
        ref = pool(x.double(), out)
        torch.testing.assert_close(getattr(fancy, f"adaptive_avg_pool{nd}d")(x, out).double(), ref,
                                   rtol=1e-6, atol=1e-6, equal_nan=True, msg=lambda m: f"{size} -> {out}: {m}")


@pytest.mark.parametrize("c", [8, 16, 32, 40, 72])
@pytest.mark.parametrize("w", [7, 8])
def test_channels_last_long_window_extremes(c, w):
    """Channels-last max and min fold NaN-blind with an x·0 probe, and fold again exactly
    when the probe sees NaN or ±inf (cl_extremes_probed; with C > 32 and 64 positions or
    more, 9×8 here, wide_extremes_probed row by row, after a NaN met in an earlier row
    too). Both ways must give ATen's max pooling bit for bit, with indices and without:
    the first of tied values and signed zeros, NaN, ±inf."""
    g = torch.Generator().manual_seed(c)
    for special in (None, math.nan, math.inf, -math.inf):
        x = torch.randn(2, c, 9, w, generator=g).round(decimals=1)
        x[0, 1] = -x[0, 1].abs()
        x[0, 1, 2, 3], x[0, 1, 4, 0] = -0.0, 0.0  # the max of this plane: −0 first, then +0
        x[1, 2] = x[1, 2].abs()
        x[1, 2, 1, 1], x[1, 2, 5, 5] = 0.0, -0.0  # its min: +0 first
        if special is not None:
            x[1, c - 1, 3, 4] = special
        x = x.contiguous(memory_format=torch.channels_last)
        theirs = F.max_pool2d(x, (9, w))
        for ours in (fancy.max_pool2d(x, (9, w)), fancy.global_max_pool(x, True)):
            _eq(ours, theirs)
            assert torch.equal(ours.signbit() & ~ours.isnan(), theirs.signbit() & ~theirs.isnan())
        ours, theirs = fancy.min_pool2d(x, (9, w)), -F.max_pool2d(-x, (9, w))
        _eq(ours, theirs)
        assert torch.equal(ours.signbit() & ~ours.isnan(), theirs.signbit() & ~theirs.isnan())
        _eq(fancy.max_pool2d(x, (9, w), return_indices=True), F.max_pool2d(x, (9, w), return_indices=True))
        _eq(fancy.adaptive_max_pool2d(x, 1, return_indices=True), F.adaptive_max_pool2d(x, 1, return_indices=True))
        (ours, idx), (theirs, ref_idx) = fancy.min_pool2d(x, (9, w), return_indices=True), F.max_pool2d(
            -x, (9, w), return_indices=True)
        _eq(ours, -theirs)
        _eq(idx, ref_idx)


@pytest.mark.parametrize("c,size,out", [(40, (21, 19), (1, 1)), (64, (20, 23), (3, 2)), (33, (17, 30), (2, 5)),
                                        (105, (19, 16), (4, 3))])
def test_channels_last_wide_windows(c, size, out):
    """Channels-last windows of >= 64 positions with C > 32 take the row-wise path
    (cl_row_wide); it and the path with indices fold register blocks of 64, 32, 8 and 1
    lanes (C = 105); NaN, ±inf and ties included."""
    x = torch.randn(2, c, *size, generator=torch.Generator().manual_seed(c)).round(decimals=1)
    x.view(-1)[::97] = float("nan")
    x.view(-1)[5::89] = float("inf")
    x = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fancy.adaptive_avg_pool2d(x, out), F.adaptive_avg_pool2d(x, out),
                               rtol=1e-6, atol=1e-6, equal_nan=True)
    _eq(fancy.adaptive_max_pool2d(x, out), F.adaptive_max_pool2d(x, out))
    _eq(fancy.adaptive_max_pool2d(x, out, return_indices=True), F.adaptive_max_pool2d(x, out, return_indices=True))
    _eq(fancy.max_pool2d(x, 3, 2, 1, return_indices=True), F.max_pool2d(x, 3, 2, 1, return_indices=True))
    _eq(fancy.max_pool2d(x, 3, 2, 1), F.max_pool2d(x, 3, 2, 1))  # small windows without indices: cl_window
    _eq(fancy.min_pool2d(x, 2), -F.max_pool2d(-x, 2))
    _eq(fancy.global_max_pool(x), x.amax((2, 3)))
    torch.testing.assert_close(fancy.global_avg_pool(x), x.mean((2, 3)), rtol=1e-6, atol=1e-6, equal_nan=True)
    xf = x.nan_to_num(0.0, 3.0)
    torch.testing.assert_close(fancy.lp_pool2d(xf, 2.0, (8, 8), 4), _lp_reference(xf.double(), 2, 2.0, (8, 8), 4, False),
                               rtol=1e-6, atol=1e-6, check_dtype=False)
    assert fancy.adaptive_avg_pool2d(x, out).is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("c", [8, 32, 43, 67])
@pytest.mark.parametrize("k,s,p,d,ceil", [(2, 2, 0, 1, False), (3, 2, 1, 1, False), (3, 2, 1, 2, True),
                                          (4, 3, 1, 1, True)])
def test_channels_last_small_windows_every_fold(c, k, s, p, d, ceil):
    """Channels-last windows under 64 positions fold register blocks of 32, 8 and 1 lanes
    over the row's window rows (cl_row_narrow / cl_window), in explicit vectors for float
    max, min, average, L1, L2 and L∞: every fold, clipped (ceil_mode) windows, dilation,
    NaN, ±inf and ties, against ATen and the float64 composition."""
    x = torch.randn(2, c, 13, 11, generator=torch.Generator().manual_seed(c + k)).round(decimals=1)
    x.view(-1)[::101] = float("nan")
    x.view(-1)[7::89] = -float("inf")
    x = x.contiguous(memory_format=torch.channels_last)
    _eq(fancy.max_pool2d(x, k, s, p, d, ceil), F.max_pool2d(x, k, s, p, d, ceil))
    _eq(fancy.max_pool2d(x, k, s, p, d, ceil, return_indices=True),
        F.max_pool2d(x, k, s, p, d, ceil, return_indices=True))
    _eq(fancy.min_pool2d(x, k, s, p, d, ceil, return_indices=True),
        tuple(t if i else -t for i, t in enumerate(F.max_pool2d(-x, k, s, p, d, ceil, return_indices=True))))
    for cip in (True, False):
        torch.testing.assert_close(fancy.avg_pool2d(x, k, s, p, ceil, cip), F.avg_pool2d(x, k, s, p, ceil, cip),
                                   rtol=1e-6, atol=1e-6, equal_nan=True)
    xf = x.nan_to_num(0.0, 3.0, -3.0)
    for norm in (1.0, 2.0, math.inf):
        out = fancy.lp_pool2d(xf, norm, k, s, ceil)
        assert out.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(out.double(), _lp_reference(xf.double(), 2, norm, (k, k), (s, s), ceil),
                                   rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("c", [3, 40, 70])
def test_channels_last_windows_starting_at_the_identity(c):
    """Channels-last register blocks start at −inf (max) / +inf (min) with the window's
    first position: windows of only −inf, or whose first element is −inf, must still give
    PyTorch's value and index (its first element's)."""
    x = torch.randn(2, c, 9, 8, generator=torch.Generator().manual_seed(c))
    x[:, :, :4] = -math.inf  # whole windows of −inf in the top rows
    x[:, ::2, 4::3, ::3] = -math.inf  # −inf first elements below
    x = x.contiguous(memory_format=torch.channels_last)
    for k, st, p in ((2, 2, 0), (3, 2, 1), (3, 1, 0)):
        _eq(fancy.max_pool2d(x, k, st, p), F.max_pool2d(x, k, st, p))
        _eq(fancy.min_pool2d(-x, k, st, p), -F.max_pool2d(x, k, st, p))
        _eq(fancy.max_pool2d(x, k, st, p, return_indices=True), F.max_pool2d(x, k, st, p, return_indices=True))
        y, i = fancy.min_pool2d(-x, k, st, p, return_indices=True)
        ry, ri = F.max_pool2d(x, k, st, p, return_indices=True)
        _eq(y, -ry)
        _eq(i, ri)
    _eq(fancy.adaptive_max_pool2d(x, (3, 2), return_indices=True), F.adaptive_max_pool2d(x, (3, 2), return_indices=True))


@pytest.mark.parametrize("nd,k,s,p,d,ceil,seed", list(_cases("unpool")))
def test_unpool_gradient(nd, k, s, p, d, ceil, seed):
    rng = random.Random(seed)
    x = _random_input(rng, nd, k, [1] * nd, p, specials=False)
    try:
        y, idx = getattr(F, f"max_pool{nd}d")(x, k, s, p, 1, ceil_mode=ceil, return_indices=True)
    except RuntimeError:
        pytest.skip("PyTorch rejects this configuration")
    ya, yb = y.clone().requires_grad_(), y.clone().requires_grad_()
    try:
        ref = getattr(F, f"max_unpool{nd}d")(ya, idx, k, s, p, output_size=x.shape[-nd:])
    except ValueError:
        pytest.skip("input size is not a valid unpooled size for these arguments")
    out = getattr(fancy, f"max_unpool{nd}d")(yb, idx, k, s, p, output_size=x.shape[-nd:])
    _eq(out, ref)
    g = torch.randn_like(ref)
    ref.backward(g)
    out.backward(g)
    _eq(yb.grad, ya.grad)


@pytest.mark.parametrize("w", [17, 28, 37, 112, 113])
def test_stride2_sums_match_aten(w):
    """Average and Lp over 2- and 3-wide windows of stride 2 take 8 outputs at a time with
    AVX2, 16 with AVX-512 on rows of 16 or more (shuffled taps, the last step of a row
    overlapping the one before); every padding, divisor rule and row length around the
    vector width must still match ATen within float32's 1e-6."""
    g = torch.Generator().manual_seed(w)
    x = torch.randn(2, 3, 9, w, generator=g)
    for k, pad, ceil, inc, div in itertools.product((3, (2, 3), 2, (3, 2)), (0, 1), (False, True), (True, False),
                                                    (None, 5)):
        ours = fancy.avg_pool2d(x, k, 2, pad, ceil, inc, div)
        theirs = F.avg_pool2d(x, k, 2, pad, ceil, inc, div)
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)
    for p, k, ceil in itertools.product((1.0, 2.0), (3, 2), (False, True)):  # fancy's Lp takes |x| (ATen's p = 1 would not)
        torch.testing.assert_close(fancy.lp_pool2d(x, p, k, 2, ceil), F.lp_pool2d(x.abs(), p, k, 2, ceil_mode=ceil),
                                   rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("w", [5, 6, 9, 14, 17, 27, 61])
def test_direct_rows_bit_identical_with_edges(w):
    """Windows up to 3 wide and 4 rows high take the direct path (with indices at strides
    of 3 and more too: whole rows in 8-lane gathers in AVX2 and AVX-512 builds, rows of 8
    outputs or more from 27 columns at stride 3), whose edge outputs (the windows a row's
    ends clip) have their own loop (direct_edges). Average pooling there (strides 1 and 2)
    must equal ATen's bit for bit, a window of −0 summing to +0 as ATen's sum from 0 does;
    max and min with indices too, with NaN, −inf and signed zeros at both ends of a row."""
    g = torch.Generator().manual_seed(w)
    for k, s, p, ceil, inc, div in itertools.product((2, 3, (3, 2)), (1, 2, 3, 4, 7), (0, 1), (False, True),
                                                     (True, False), (None, 3)):
        x = torch.randn(2, 3, 7, w, generator=g)
        x[0, 0, :, :2] = -0.0
        x[0, 0, :, -2:] = -0.0
        x[0, 1, 2, 0] = float("nan")
        x[0, 1, 3, -1] = float("nan")
        x[0, 2, :, :2] = float("-inf")
        try:
            theirs = F.avg_pool2d(x, k, s, p, ceil, inc, div)
        except RuntimeError:
            continue  # padding over half the kernel
        ours = fancy.avg_pool2d(x, k, s, p, ceil, inc, div)
        if s <= 2:  # the direct path, in ATen's order
            _eq(ours, theirs)
            assert torch.equal(ours.signbit(), theirs.signbit()), (k, s, p, ceil, inc, div)
        else:  # separable: rows summed first
            torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6, equal_nan=True)
        _eq(fancy.max_pool2d(x, k, s, p, 1, ceil, True), F.max_pool2d(x, k, s, p, 1, ceil, True))
        _eq(fancy.min_pool2d(x, k, s, p, 1, ceil, True)[1], F.max_pool2d(-x, k, s, p, 1, ceil, True)[1])


@pytest.mark.parametrize("h,w", [(2, 2), (5, 8), (7, 10), (112, 112), (3, 4), (28, 28), (9, 30), (1, 1), (4, 33),
                                 (5, 17), (3, 61), (3, 65), (4, 90), (7, 97), (5, 128), (5, 129), (6, 200)])
def test_3x3_stride2_pad1_planes_bit_identical(h, w):
    """Max and min 3x3/2 pad 1 without indices take a plane-at-a-time path (with AVX-512:
    planes up to 64 outputs wide top to bottom, each row's taps kept for the next output
    row; wider ones a row at a time); values, NaN and the sign of zero must equal ATen's
    scan, with ceil_mode either way."""
    g = torch.Generator().manual_seed(h * 100 + w)
    for trial in range(6):
        x = torch.randn(2, 3, h, w, generator=g)
        if trial % 2:
            x = torch.randint(-2, 3, x.shape, generator=g).float()  # ties
            x[x == 0] = torch.where(torch.rand(int((x == 0).sum()), generator=g) < 0.5, -0.0, 0.0)
        if trial % 3 == 2:
            x[torch.rand(x.shape, generator=g) < 0.05] = float("nan")
        for dt, ceil in itertools.product((torch.float32, torch.float64), (False, True)):
            xt = x.to(dt)
            for ours, theirs in ((fancy.max_pool2d(xt, 3, 2, 1, ceil_mode=ceil), F.max_pool2d(xt, 3, 2, 1, ceil_mode=ceil)),
                                 (fancy.min_pool2d(xt, 3, 2, 1, ceil_mode=ceil),
                                  -F.max_pool2d(-xt, 3, 2, 1, ceil_mode=ceil))):
                assert torch.equal(ours.isnan(), theirs.isnan())
                a, b = torch.nan_to_num(ours), torch.nan_to_num(theirs)
                assert torch.equal(a, b) and torch.equal(a.signbit(), b.signbit())


@pytest.mark.parametrize("h", [1, 2, 3, 4, 5, 8])
def test_3x3_stride2_pad1_sum_planes_bit_identical(h):
    """Average and Lp 3x3/2 pad 1 take a plane-at-a-time path with AVX-512 (16 outputs a
    step from output 0, the taps outside the input read as +0, masked loads and stores at
    a row's end; planes up to 64 outputs wide top to bottom, wider ones a row at a time):
    every width around the 16- and 32-lane steps and the 64-output switch, every row count of a
    window, ceil_mode, both divisor rules and an override must give ATen's average bit for
    bit (a window of -0 summing to +0, NaN and inf where ATen has them); L1 and L2 match
    the float64 composition, and (1, 3, 3) windows over 3-D inputs take the path too."""
    g = torch.Generator().manual_seed(h)
    for w in list(range(1, 40)) + [47, 48, 49, 63, 64, 65, 95, 96, 97, 111, 112, 113, 127, 128, 129, 130, 131, 160]:
        x = torch.randn(2, 2, h, w, generator=g) * 3
        x[0, 0, :, :2] = -0.0
        x[0, 0, :, -2:] = -0.0
        x[1, 1] = -0.0
        x[0, 1, 0, 0] = float("nan")
        x[0, 1, -1, -1] = float("inf")
        for ceil, inc, div in itertools.product((False, True), (True, False), (None, 5)):
            ours, theirs = fancy.avg_pool2d(x, 3, 2, 1, ceil, inc, div), F.avg_pool2d(x, 3, 2, 1, ceil, inc, div)
            _eq(ours, theirs)
            assert torch.equal(ours.signbit(), theirs.signbit()), (w, ceil, inc, div)
        finite = x.nan_to_num(0.0, 0.0, 0.0)
        for p, ceil in itertools.product((1.0, 2.0), (False, True)):
            ref = (F.avg_pool2d(finite.double().abs() ** p, 3, 2, 1, ceil, True) * 9) ** (1 / p)
            torch.testing.assert_close(fancy.lp_pool2d(finite, p, 3, 2, ceil, 1), ref.float(), rtol=1e-6, atol=1e-6)
    x = torch.randn(2, 3, 4, 2 * h + 1, 20, generator=g)
    for ceil in (False, True):
        _eq(fancy.avg_pool3d(x, (1, 3, 3), (1, 2, 2), (0, 1, 1), ceil),
            F.avg_pool3d(x, (1, 3, 3), (1, 2, 2), (0, 1, 1), ceil))


@pytest.mark.parametrize("w", [16, 21, 28, 37, 56])
def test_stride2_extremes_bit_identical(w):
    """Max and min over 2- and 3-wide windows of stride 2 take 8 outputs at a time with
    AVX2, 16 with AVX-512 (with indices: int32 positions beside the values, 8 at a
    time), the last step of a row overlapping the one before it (14 outputs: steps at 0
    and 6); values, indices, NaN and the sign of zero must equal ATen's scan, padded or
    not."""
    g = torch.Generator().manual_seed(w)
    for trial in range(6):
        x = torch.randn(2, 3, 7, w, generator=g)
        if trial % 2:
            x = torch.randint(-2, 3, x.shape, generator=g).float()  # ties
            x[x == 0] = torch.where(torch.rand(int((x == 0).sum()), generator=g) < 0.5, -0.0, 0.0)
        if trial % 3 == 2:
            x[torch.rand(x.shape, generator=g) < 0.05] = float("nan")
            x[torch.rand(x.shape, generator=g) < 0.05] = float("-inf")
        for k, pad, ceil in ((2, 0, False), (2, 1, False), ((1, 2), 0, True), ((3, 2), 1, True), (3, 1, False),
                             ((2, 3), 0, True)):
            ref_max, ref_imax = F.max_pool2d(x, k, 2, pad, ceil_mode=ceil, return_indices=True)
            ref_min, ref_imin = F.max_pool2d(-x, k, 2, pad, ceil_mode=ceil, return_indices=True)
            for ours, theirs in ((fancy.max_pool2d(x, k, 2, pad, ceil_mode=ceil), ref_max),
                                 (fancy.min_pool2d(x, k, 2, pad, ceil_mode=ceil), -ref_min)):
                assert torch.equal(ours.isnan(), theirs.isnan())
                a, b = torch.nan_to_num(ours), torch.nan_to_num(theirs)
                assert torch.equal(a, b) and torch.equal(a.signbit(), b.signbit())
            for (ours, idx), theirs, ref_idx in ((fancy.max_pool2d(x, k, 2, pad, ceil_mode=ceil, return_indices=True),
                                                  ref_max, ref_imax),
                                                 (fancy.min_pool2d(x, k, 2, pad, ceil_mode=ceil, return_indices=True),
                                                  -ref_min, ref_imin)):
                assert torch.equal(idx, ref_idx)
                a, b = torch.nan_to_num(ours), torch.nan_to_num(theirs)
                assert torch.equal(a, b) and torch.equal(a.signbit(), b.signbit())


@pytest.mark.parametrize("w", [20, 40, 66])
def test_stride2_extremes_one_nan_at_every_position(w):
    """Max and min over stride-2 windows without indices fold with plain max / min
    instructions and a NaN probe over the row's inputs (8 outputs a step with AVX2, 16
    with AVX-512), refolding NaN-exactly only the rows where the probe fired. A single NaN
    at each position in turn (the last tap of a step's last window included) must come
    out exactly where ATen's scan puts it, in every layout of the taps."""
    g = torch.Generator().manual_seed(w)
    base = torch.randn(1, 1, 4, w, generator=g)
    for k, pad in ((2, 0), (3, 1), (3, 0)):
        for j in range(w):
            x = base.clone()
            x[0, 0, 1, j] = float("nan")
            for ours, theirs in ((fancy.max_pool2d(x, k, 2, pad), F.max_pool2d(x, k, 2, pad)),
                                 (fancy.min_pool2d(x, k, 2, pad), -F.max_pool2d(-x, k, 2, pad))):
                assert torch.equal(ours.isnan(), theirs.isnan()), (k, pad, j)
                assert torch.equal(torch.nan_to_num(ours), torch.nan_to_num(theirs)), (k, pad, j)


@pytest.mark.parametrize("k", [(2, 3), (3, 3), (2, 5), (3, 4)])
def test_nan_in_a_windows_first_row_propagates(k):
    """Max and min without indices over windows of several rows fold the rows first with a
    NaN-blind vector max and a probe that says when to redo the fold exactly; a NaN in a
    window's first row must reach the output too (it was dropped when the first row was
    copied past the probe)."""
    for w in (5, 9, 28):
        for col in (0, w // 2, w - 1):
            x = torch.randn(1, 2, 6, w)
            x[0, 1, 2, col] = float("nan")
            for s in (1, 2):
                theirs = F.max_pool2d(x, k, s)
                for ours in (fancy.max_pool2d(x, k, s), -fancy.min_pool2d(-x, k, s)):
                    assert torch.equal(ours.isnan(), theirs.isnan())
                    assert torch.equal(torch.nan_to_num(ours), torch.nan_to_num(theirs))


@pytest.mark.parametrize("w", [7, 8, 9, 15, 16, 17, 28, 37, 64, 113])
def test_wide_and_strided_rows_bit_identical(w):
    """Windows wider than 3, of stride 3 or more, or dilated fold each row with a sliding
    vector fold (fold_interior_sliding: blocks of 8 window starts, the last overlapping the
    one before, then every S-th start picked by a masked gather). Max and min must equal
    ATen's bit for bit with NaN (first, middle and last column), ±inf, ties and signed
    zeros; average and Lp within 1e-6; on 1-D rows (the input row itself, bfloat16 too)
    and on 2-D windows (their rows folded first)."""
    g = torch.Generator().manual_seed(w)
    for k, s, d in itertools.product((2, 3, 4, 5, 7), (1, 3, 4, 7), (1, 2)):
        if (k - 1) * d + 1 > w:
            continue
        for p in sorted({0, k // 2}):
            x = torch.randn(2, 3, 6, w, generator=g)
            x[0, 0] = torch.randint(-1, 2, (6, w), generator=g).float()  # ties
            x[0, 0][x[0, 0] == 0] = -0.0
            x[0, 0, ::2, ::3] = 0.0  # +0 and −0 in the same windows
            x[0, 1, 1, 0] = x[0, 1, 3, w // 2] = x[0, 1, 5, w - 1] = math.nan
            x[1, 0, 2, 3 % w] = math.inf
            x[1, 0, 4, w - 2] = -math.inf
            two = ((2, k), (1, s), (0, p), (1, d))  # window rows folded first
            three = ((3, k), (2, s), (1, p), (1, d))
            for t in (x, -x):
                rows = t.flatten(0, 1)  # 1-D: the input row itself
                pairs = [(fancy.max_pool2d(t, *two), F.max_pool2d(t, *two)),
                         (fancy.max_pool2d(t, *three), F.max_pool2d(t, *three)),
                         (fancy.min_pool2d(t, *three), -F.max_pool2d(-t, *three)),
                         (fancy.max_pool1d(rows, k, s, p, d), F.max_pool1d(rows, k, s, p, d)),
                         (fancy.min_pool1d(rows, k, s, p, d), -F.max_pool1d(-rows, k, s, p, d))]
                for ours, theirs in pairs:
                    _eq(ours, theirs)
                    assert torch.equal(ours.signbit(), theirs.signbit()), (k, s, p, d)
            xb = x.flatten(0, 1).bfloat16()
            _eq(fancy.max_pool1d(xb, k, s, p, d), F.max_pool1d(xb, k, s, p, d))
            if d == 1:
                y = torch.nan_to_num(x, posinf=3.0, neginf=-3.0)
                for kh, sh, ph in ((2, 1, 0), (3, 2, 1)):
                    torch.testing.assert_close(fancy.avg_pool2d(y, (kh, k), (sh, s), (ph, p)),
                                               F.avg_pool2d(y, (kh, k), (sh, s), (ph, p)), rtol=1e-6, atol=1e-6)
                torch.testing.assert_close(fancy.avg_pool1d(y.flatten(0, 1), k, s, p),
                                           F.avg_pool1d(y.flatten(0, 1), k, s, p), rtol=1e-6, atol=1e-6)
                torch.testing.assert_close(fancy.lp_pool2d(y, 2.0, (2, k), (1, s)),
                                           F.lp_pool2d(y, 2.0, (2, k), (1, s)), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("k,s,p,d", [(4, 4, 0, 1), (3, 1, 0, 1), (2, 2, 0, 1), (3, 2, 1, 1), (5, 3, 2, 1),
                                     (3, 1, 1, 2), (2, 1, 0, 1), (6, 2, 3, 1)])
@pytest.mark.parametrize("c", [3, 40])
def test_signed_zero_ties_without_indices_keep_the_first_zero(k, s, p, d, c):
    """Windows whose extreme is a mix of -0 and +0: ATen's scan keeps the first; every path
    without indices (direct, separable, whole-plane, channels-last) must return that one.
    C = 40: channels-last register blocks of 32 and 8 lanes."""
    g = torch.Generator().manual_seed(k * 100 + s * 10 + p)
    for trial in range(10 if c == 3 else 3):
        x = -torch.rand(2, c, 12, 13, generator=g) - 1
        m = torch.rand(x.shape, generator=g) < 0.3
        x[m] = torch.where(torch.rand(int(m.sum()), generator=g) < 0.5, -0.0, 0.0)
        for t in (x, -x):
            pairs = [(fancy.max_pool2d(t, k, s, p, d), F.max_pool2d(t, k, s, p, d)),
                     (fancy.min_pool2d(t, k, s, p, d), -F.max_pool2d(-t, k, s, p, d)),
                     (fancy.max_pool2d(t.contiguous(memory_format=torch.channels_last), k, s, p, d),
                      F.max_pool2d(t, k, s, p, d)),
                     (fancy.global_max_pool(t), F.adaptive_max_pool2d(t, 1).flatten(1))]
            for ours, theirs in pairs:
                assert torch.equal(ours, theirs) and torch.equal(ours.signbit(), theirs.signbit())


@pytest.mark.parametrize("h,w", [(2, 16), (28, 28), (6, 18), (4, 64), (8, 30), (6, 66), (7, 28)])
def test_contiguous_2x2_stride2_on_short_rows(h, w):
    """Contiguous k2 s2 on even maps 16 to 64 wide runs over row pairs in one loop
    (pool2x2_s2_pairs), 8 outputs a step, the last step overlapping (w = 18, 28, 30),
    with ceil_mode too (even maps have no clipped window); 66 wide and odd heights (the
    last row dropped, or a clipped window with ceil_mode) take the row path. Every
    fold without indices, against ATen: max and min bit-identical, signed zeros included;
    NaN, ±inf, divisor_override."""
    g = torch.Generator().manual_seed(h * 100 + w)
    x = torch.randn(2, 3, h, w, generator=g).round(decimals=1)
    x[torch.rand(x.shape, generator=g) < 0.2] = -0.0
    x.view(-1)[::37] = float("nan")
    x.view(-1)[5::41] = float("inf")
    x.view(-1)[9::43] = -float("inf")
    for ceil in (False, True):
        for ours, theirs in [(fancy.max_pool2d(x, 2, ceil_mode=ceil), F.max_pool2d(x, 2, ceil_mode=ceil)),
                             (fancy.min_pool2d(x, 2, ceil_mode=ceil), -F.max_pool2d(-x, 2, ceil_mode=ceil))]:
            _eq(ours, theirs)
            assert torch.equal(ours.signbit(), theirs.signbit())
        for div in (None, 3):
            torch.testing.assert_close(fancy.avg_pool2d(x, 2, ceil_mode=ceil, divisor_override=div),
                                       F.avg_pool2d(x, 2, ceil_mode=ceil, divisor_override=div),
                                       rtol=1e-6, atol=1e-6, equal_nan=True)
    xf = x.nan_to_num(0.0, 3.0, -3.0)
    for norm in (1.0, 2.0, math.inf):
        torch.testing.assert_close(fancy.lp_pool2d(xf, norm, 2).double(),
                                   _lp_reference(xf.double(), 2, norm, (2, 2), (2, 2), False), rtol=1e-6, atol=1e-6)


def test_bfloat16_forward_accumulates_in_float():
    x = torch.randn(2, 5, 17, 19)
    xb = x.bfloat16()
    for fn, ref in [
        (lambda t: fancy.max_pool2d(t, 3, 2, 1), lambda t: F.max_pool2d(t, 3, 2, 1)),
        (lambda t: fancy.avg_pool2d(t, 3, 2, 1), lambda t: F.avg_pool2d(t, 3, 2, 1)),
        (lambda t: fancy.lp_pool2d(t, 2, 3, 2), lambda t: F.lp_pool2d(t.abs(), 2, 3, 2)),
        (lambda t: fancy.adaptive_avg_pool2d(t, 4), lambda t: F.adaptive_avg_pool2d(t, 4)),
    ]:
        out = fn(xb)
        assert out.dtype == torch.bfloat16
        # the float result of the bf16 input, rounded once: accumulation was in float
        _eq(out, ref(xb.float()).bfloat16())


def test_dilated_window_in_padding_only_is_defined():
    # depth 1, padding 1, kernel 2, dilation 2: the first depth window sees only padding.
    x = torch.randn(1, 7, 1, 1, 12, requires_grad=True)
    out, idx = fancy.max_pool3d(x, (2, 4, 1), (1, 3, 1), (1, 2, 0), (2, 1, 2), return_indices=True)
    assert torch.isinf(out).any() and (out[torch.isinf(out)] < 0).all()
    assert (idx[torch.isinf(out)] == -1).all()
    out[torch.isfinite(out)].sum().backward()
    assert torch.isfinite(x.grad).all()


def test_float64_gradcheck_every_op():
    torch.manual_seed(0)
    x2 = torch.randn(2, 3, 7, 8, dtype=torch.double, requires_grad=True)
    x1 = torch.randn(2, 3, 9, dtype=torch.double, requires_grad=True)
    x3 = torch.randn(1, 2, 5, 6, 5, dtype=torch.double, requires_grad=True)
    checks = [
        (lambda t: fancy.max_pool1d(t, 3, 2, 1), x1),
        (lambda t: fancy.max_pool2d(t, 3, 2, 1, 1, True), x2),
        (lambda t: fancy.max_pool3d(t, 2, 1, 1), x3),
        (lambda t: fancy.min_pool2d(t, 2, 2), x2),
        (lambda t: fancy.min_pool3d(t, 2), x3),
        (lambda t: fancy.avg_pool1d(t, 3, 2, 1, True, False), x1),
        (lambda t: fancy.avg_pool2d(t, 3, 2, 1, True, True, 5), x2),
        (lambda t: fancy.avg_pool3d(t, 3, 2, 1), x3),
        (lambda t: fancy.lp_pool1d(t, 2, 3, 2), x1),
        (lambda t: fancy.lp_pool2d(t, 3.0, 2, 2, True), x2),
        (lambda t: fancy.lp_pool2d(t, 1.5, 3, 2, padding=1), x2),
        (lambda t: fancy.lp_pool3d(t, math.inf, 2), x3),
        (lambda t: fancy.adaptive_avg_pool2d(t, (3, 5)), x2),
        (lambda t: fancy.adaptive_max_pool1d(t, 4), x1),
        (lambda t: fancy.adaptive_max_pool3d(t, 2), x3),
        (lambda t: fancy.global_avg_pool(t), x3),
        (lambda t: fancy.global_max_pool(t, True), x2),
        (lambda t: fancy.max_unpool2d(t, F.max_pool2d(x2.detach(), 2, return_indices=True)[1], 2),
         torch.randn(2, 3, 3, 4, dtype=torch.double, requires_grad=True)),
    ]
    for fn, x in checks:
        assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-6)
    x_cl = x2.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: fancy.avg_pool2d(t, 3, 2, 1), (x_cl,))
    assert torch.autograd.gradcheck(lambda t: fancy.lp_pool2d(t, 2, 2), (x_cl,))


def test_double_backward_is_refused_clearly():
    x = torch.randn(1, 2, 6, 6, dtype=torch.double, requires_grad=True)
    y = fancy.max_pool2d(x, 2)
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(y.sum(), x, create_graph=True)


def test_modules_and_op_reach_the_same_kernel():
    x = torch.randn(2, 3, 11, 13)
    a = fancy.nn.MaxPool2d(3, stride=2, padding=1)(x)
    b = torch.ops.fancy.max_pool2d(x, [3, 3], [2, 2], [1, 1])
    c = fancy.max_pool2d(x, 3, 2, 1)
    _eq(a, b)
    _eq(a, c)
    y, idx = fancy.nn.MaxPool2d(2, return_indices=True)(x)
    _eq(fancy.nn.MaxUnpool2d(2)(y, idx, output_size=x.shape), F.max_unpool2d(y, idx, 2, output_size=x.shape))
    _eq(fancy.nn.GlobalMaxPool(keepdim=True)(x), x.amax((2, 3), keepdim=True))
