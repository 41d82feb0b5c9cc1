"""torch.nn-style modules over fancy's ops, with torch.nn's constructor arguments."""
import torch

from . import functional as F

__all__ = []


def _export(cls):
    __all__.append(cls.__name__)
    globals()[cls.__name__] = cls
    return cls


def _make_extremum(stem, n):
    fn = getattr(F, f"{stem}{n}d")

    class Pool(torch.nn.Module):
        def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                     ceil_mode=False):
            super().__init__()
            self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding
            self.dilation, self.return_indices, self.ceil_mode = dilation, return_indices, ceil_mode

        def forward(self, input):
            return fn(input, self.kernel_size, self.stride, self.padding, self.dilation,
                      self.ceil_mode, self.return_indices)

        def extra_repr(self):
            return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                    f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")

    Pool.__name__ = Pool.__qualname__ = ("MaxPool" if stem == "max_pool" else "MinPool") + f"{n}d"
    return Pool


def _make_avg(n):
    fn = getattr(F, f"avg_pool{n}d")

    class AvgPool(torch.nn.Module):
        def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                     count_include_pad=True, divisor_override=None):
            super().__init__()
            self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding
            self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
            self.divisor_override = divisor_override

        def forward(self, input):
            return fn(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                      self.count_include_pad, self.divisor_override)

        def extra_repr(self):
            return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    AvgPool.__name__ = AvgPool.__qualname__ = f"AvgPool{n}d"
    return AvgPool


def _make_lp(n):
    fn = getattr(F, f"lp_pool{n}d")

    class LPPool(torch.nn.Module):
        def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
            super().__init__()
            self.norm_type, self.kernel_size, self.stride = norm_type, kernel_size, stride
            self.ceil_mode = ceil_mode

        def forward(self, input):
            return fn(input, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)

        def extra_repr(self):
            return f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}"

    LPPool.__name__ = LPPool.__qualname__ = f"LPPool{n}d"
    return LPPool


def _make_adaptive(n, kind):
    fn = getattr(F, f"adaptive_{kind}_pool{n}d")

    class Adaptive(torch.nn.Module):
        def __init__(self, output_size, return_indices=False):
            super().__init__()
            self.output_size, self.return_indices = output_size, return_indices

        def forward(self, input):
            if kind == "max":
                return fn(input, self.output_size, self.return_indices)
            return fn(input, self.output_size)

        def extra_repr(self):
            return f"output_size={self.output_size}"

    Adaptive.__name__ = Adaptive.__qualname__ = f"Adaptive{kind.capitalize()}Pool{n}d"
    return Adaptive


def _make_unpool(n):
    fn = getattr(F, f"max_unpool{n}d")

    class MaxUnpool(torch.nn.Module):
        def __init__(self, kernel_size, stride=None, padding=0):
            super().__init__()
            self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding

        def forward(self, input, indices, output_size=None):
            return fn(input, indices, self.kernel_size, self.stride, self.padding, output_size)

    MaxUnpool.__name__ = MaxUnpool.__qualname__ = f"MaxUnpool{n}d"
    return MaxUnpool


for _n in (1, 2, 3):
    _export(_make_extremum("max_pool", _n))
    _export(_make_extremum("min_pool", _n))
    _export(_make_avg(_n))
    _export(_make_lp(_n))
    _export(_make_adaptive(_n, "avg"))
    _export(_make_adaptive(_n, "max"))
    _export(_make_unpool(_n))
del _n


@_export
class GlobalAvgPool(torch.nn.Module):
    """Mean over every dim after (N, C): the classifier head that replaces a dense layer."""

    def __init__(self, keepdim=False):
        super().__init__()
        self.keepdim = keepdim

    def forward(self, input):
        return F.global_avg_pool(input, self.keepdim)


@_export
class GlobalMaxPool(torch.nn.Module):
    """Max over every dim after (N, C)."""

    def __init__(self, keepdim=False):
        super().__init__()
        self.keepdim = keepdim

    def forward(self, input):
        return F.global_max_pool(input, self.keepdim)
