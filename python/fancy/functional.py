"""Functional forms with torch.nn.functional's names, arguments and defaults.

Each function calls `torch.ops.fancy.<op>`; C++ and the nn modules reach the same kernel.
Additions over torch: min pooling, global pooling, lp_pool3d and lp_pool padding.
"""

import torch

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


del _n, _f
