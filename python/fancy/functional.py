"""Functional forms with torch.nn.functional's names, arguments and defaults.

Each function calls `torch.ops.fancy.<op>`; C++ and the nn modules reach the same kernel.
Additions over torch: min pooling, global pooling, lp_pool3d and lp_pool padding.
"""

import torch

from . import _load_library

_load_library()

_ops = torch.ops.fancy

__all__ = []


def _ntuple(value, n, name):
    if isinstance(value, (list, tuple, torch.Size)):
        if len(value) == 1:
            return [int(value[0])] * n
        return [int(v) for v in value]
    return [int(value)] * n


def _stride(stride, n):
    # torch: stride=None (or []) means stride = kernel_size.
    if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0):
        return []
    return _ntuple(stride, n, "stride")


def _export(fn):
    __all__.append(fn.__name__)
    globals()[fn.__name__] = fn
    return fn


def _make_extremum(stem, n):
    op = getattr(_ops, f"{stem}{n}d")
    op_idx = getattr(_ops, f"{stem}{n}d_with_indices")

    def pool(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
             return_indices=False):
        args = (input, _ntuple(kernel_size, n, "kernel_size"), _stride(stride, n),
                _ntuple(padding, n, "padding"), _ntuple(dilation, n, "dilation"), bool(ceil_mode))
        return op_idx(*args) if return_indices else op(*args)

    pool.__name__ = f"{stem}{n}d"
    pool.__doc__ = (f"{stem}{n}d(input, kernel_size, stride=None, padding=0, dilation=1, "
                    "ceil_mode=False, return_indices=False): as torch.nn.functional's max pooling"
                    + (", taking the minimum (indices of the first minimum)" if stem == "min_pool" else ""))
    return pool


def _make_avg(n):
    op = getattr(_ops, f"avg_pool{n}d")

    def avg_pool(input, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        return op(input, _ntuple(kernel_size, n, "kernel_size"), _stride(stride, n),
                  _ntuple(padding, n, "padding"), bool(ceil_mode), bool(count_include_pad),
                  divisor_override)

    avg_pool.__name__ = f"avg_pool{n}d"
    avg_pool.__doc__ = f"avg_pool{n}d: as torch.nn.functional.avg_pool{n}d"
    return avg_pool


def _make_lp(n):
    op = getattr(_ops, f"lp_pool{n}d")

    def lp_pool(input, norm_type, kernel_size, stride=None, ceil_mode=False, padding=0):
        return op(input, float(norm_type), _ntuple(kernel_size, n, "kernel_size"),
                  _stride(stride, n), bool(ceil_mode), _ntuple(padding, n, "padding"))

    lp_pool.__name__ = f"lp_pool{n}d"
    lp_pool.__doc__ = (f"lp_pool{n}d: (sum |x|^p)^(1/p) over each window, as torch's lp_pool but "
                       "on |x| (never NaN for negative inputs); norm_type=inf is max |x|")
    return lp_pool


def _output_size(input, output_size, n):
    size = _ntuple(output_size, n, "output_size") if not isinstance(output_size, (list, tuple)) \
        else list(output_size)
    if len(size) == 1 and n > 1:
        size = size * n
    spatial = input.shape[-n:]
    return [int(spatial[i]) if v is None else int(v) for i, v in enumerate(size)]


def _make_adaptive(n):
    avg_op = getattr(_ops, f"adaptive_avg_pool{n}d")
    max_op = getattr(_ops, f"adaptive_max_pool{n}d")

    def adaptive_avg_pool(input, output_size):
        return avg_op(input, _output_size(input, output_size, n))

    def adaptive_max_pool(input, output_size, return_indices=False):
        out, idx = max_op(input, _output_size(input, output_size, n))
        return (out, idx) if return_indices else out

    adaptive_avg_pool.__name__ = f"adaptive_avg_pool{n}d"
    adaptive_max_pool.__name__ = f"adaptive_max_pool{n}d"
    return adaptive_avg_pool, adaptive_max_pool


def _make_unpool(n):
    op = getattr(_ops, f"max_unpool{n}d")

    def max_unpool(input, indices, kernel_size, stride=None, padding=0, output_size=None):
        size = None if output_size is None else [int(v) for v in output_size]
        return op(input, indices, _ntuple(kernel_size, n, "kernel_size"), _stride(stride, n),
                  _ntuple(padding, n, "padding"), size)

    max_unpool.__name__ = f"max_unpool{n}d"
    max_unpool.__doc__ = f"max_unpool{n}d: as torch.nn.functional.max_unpool{n}d"
    return max_unpool


for _n in (1, 2, 3):
    _export(_make_extremum("max_pool", _n))
    _export(_make_extremum("min_pool", _n))
    _export(_make_avg(_n))
    _export(_make_lp(_n))
    for _f in _make_adaptive(_n):
        _export(_f)
    _export(_make_unpool(_n))


@_export
def global_avg_pool(input, keepdim=False):
    """Mean over every dim after (N, C)."""
    return _ops.global_avg_pool(input, bool(keepdim))


@_export
def global_max_pool(input, keepdim=False):
    """Max over every dim after (N, C); NaN propagates."""
    return _ops.global_max_pool(input, bool(keepdim))



# ---------------------------------------------------------------- the fancy family
def _make_fancy_window(n):
    soft_op = getattr(_ops, f"soft_pool{n}d")
    stoch_op = getattr(_ops, f"stochastic_pool{n}d")
    mixed_op = getattr(_ops, f"mixed_pool{n}d")

    def soft_pool(input, kernel_size, stride=None, padding=0, ceil_mode=False):
        return soft_op(input, _ntuple(kernel_size, n, "kernel_size"), _stride(stride, n),
                       _ntuple(padding, n, "padding"), bool(ceil_mode))

    def stochastic_pool(input, kernel_size, stride=None, padding=0, ceil_mode=False, training=True,
                        return_indices=False, generator=None):
        out, idx = stoch_op(input, _ntuple(kernel_size, n, "kernel_size"), _stride(stride, n),
                            _ntuple(padding, n, "padding"), bool(ceil_mode), bool(training), generator,
                            bool(return_indices))
        return (out, idx) if return_indices else out

    def mixed_pool(input, alpha, kernel_size, stride=None, padding=0, ceil_mode=False, training=False,
                   random=False, generator=None):
        if not torch.is_tensor(alpha):
            alpha = torch.tensor(float(alpha), dtype=input.dtype)
        return mixed_op(input, alpha, _ntuple(kernel_size, n, "kernel_size"), _stride(stride, n),
                        _ntuple(padding, n, "padding"), bool(ceil_mode), bool(training), bool(random),
                        generator)

    soft_pool.__name__ = f"soft_pool{n}d"
    soft_pool.__doc__ = (f"soft_pool{n}d(input, kernel_size, stride=None, padding=0, ceil_mode=False): "
                         "sum of softmax(x)*x over each window (Stergiou et al. 2021), window max "
                         "subtracted; padded cells excluded")
    stochastic_pool.__name__ = f"stochastic_pool{n}d"
    stochastic_pool.__doc__ = (f"stochastic_pool{n}d(input, kernel_size, stride=None, padding=0, "
                               "ceil_mode=False, training=True, return_indices=False, generator=None): "
                               "training samples one element per window with p = a/sum(a) (Zeiler & "
                               "Fergus 2013); evaluation returns sum(a^2)/sum(a). Inputs must be >= 0.")
    mixed_pool.__name__ = f"mixed_pool{n}d"
    mixed_pool.__doc__ = (f"mixed_pool{n}d(input, alpha, kernel_size, ...): alpha*max + (1-alpha)*avg; "
                          "alpha a scalar or per-channel tensor, or random=True for a 0/1 draw per "
                          "output in training (1/2 in evaluation), Yu et al. 2014")
    return soft_pool, stochastic_pool, mixed_pool


for _n in (1, 2, 3):
    for _f in _make_fancy_window(_n):
        _export(_f)


@_export
def lip_pool2d(input, logits, kernel_size, stride=None, padding=0, ceil_mode=False):
    """sum(x*exp(logits)) / sum(exp(logits)) over each window (LIP, Gao et al. 2019)."""
    return _ops.lip_pool2d(input, logits, _ntuple(kernel_size, 2, "kernel_size"), _stride(stride, 2),
                           _ntuple(padding, 2, "padding"), bool(ceil_mode))


@_export
def gated_pool2d(input, gate, kernel_size, stride=None, padding=0):
    """sigmoid(gate . x_window)*max + (1 - sigmoid)*avg with a k x k gate (Lee et al. 2016)."""
    return _ops.gated_pool2d(input, gate, _ntuple(kernel_size, 2, "kernel_size"), _stride(stride, 2),
                             _ntuple(padding, 2, "padding"))


@_export
def sort_pool2d(input, weights, kernel_size, stride=None, softmax=True):
    """Each window sorted descending; its top len(weights) values weighted by softmax(weights)
    (or the raw weights). One weight is max pooling."""
    return _ops.sort_pool2d(input, weights, _ntuple(kernel_size, 2, "kernel_size"), _stride(stride, 2),
                            bool(softmax))


@_export
def kmax_pool(input, k, dim=-1):
    """(values, indices): the k largest values along dim in their original order (ties: the
    earlier position; NaN counts as largest)."""
    return _ops.kmax_pool(input, int(k), int(dim))


@_export
def dynamic_kmax_pool(input, layer, num_layers, k_top, lengths=None, dim=-1):
    """DCNN's dynamic k-max pooling: k = max(k_top, ceil((L - l)/L * s)) for each sequence of
    length s (lengths, or the full dim). Returns (values, indices, kept): rows keeping fewer
    than the batch's largest k are padded with 0 and index -1, kept[b] says how many are real."""
    return _ops.dynamic_kmax_pool(input, int(layer), int(num_layers), int(k_top), lengths, int(dim))


@_export
def gem_pool(input, p=3.0, eps=1e-6, kernel_size=None, stride=None, keepdim=False):
    """GeM: mean(clamp(x, eps)^p)^(1/p), global (kernel_size=None) or windowed (an int is a
    square 2-D window, a list of 1-3 sizes sets the rank); p may be a learnable tensor."""
    if not torch.is_tensor(p):
        p = torch.tensor(float(p), dtype=input.dtype)
    # An int kernel_size means a square 2-D window; a list gives the spatial rank (1 to 3).
    k = None if kernel_size is None else (
        [int(v) for v in kernel_size] if isinstance(kernel_size, (list, tuple)) else [int(kernel_size)] * 2)
    s = None if stride is None else _ntuple(stride, len(k), "stride")
    return _ops.gem_pool(input, p, float(eps), k, s, bool(keepdim))


@_export
def spatial_pyramid_pool2d(input, levels=(1, 2, 4), mode="max"):
    """He et al. 2014: n x n bins per level ("max" or "avg"), flattened and concatenated to a
    fixed-length (N, C * sum(n^2)) vector for any input size."""
    return _ops.spatial_pyramid_pool2d(input, [int(v) for v in levels], mode)


@_export
def set_pool(input, dim=1, mode="max", lengths=None):
    """GaitSet's set pooling: max, mean or median over the set dim; with lengths (one per
    sample) each sample uses only its first lengths[b] elements."""
    return _ops.set_pool(input, int(dim), mode, lengths)


@_export
def horizontal_pyramid_pool(input, bins=(1, 2, 4, 8, 16)):
    """GaitSet's horizontal pyramid pooling: for each b, b horizontal strips, each mean + max;
    (N, C, sum(bins))."""
    return _ops.horizontal_pyramid_pool(input, [int(v) for v in bins])


del _n, _f


@_export
def batch_norm_relu(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
                    eps=1e-5):
    """relu(torch.nn.functional.batch_norm(...)) as one fused op, same arguments. In
    training the running statistics (when given) are updated in place, as batch_norm does."""
    return _ops.batch_norm_relu(input, running_mean, running_var, weight, bias, training, momentum, eps)
