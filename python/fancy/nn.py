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


# ---------------------------------------------------------------- the fancy family
class _Window(torch.nn.Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding
        self.ceil_mode = ceil_mode

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"ceil_mode={self.ceil_mode}")


def _make_fancy(n):
    soft, stoch, mixed = (getattr(F, f"{s}{n}d") for s in ("soft_pool", "stochastic_pool", "mixed_pool"))

    class SoftPool(_Window):
        """SoftPool (Stergiou et al. 2021)."""

        def forward(self, input):
            return soft(input, self.kernel_size, self.stride, self.padding, self.ceil_mode)

    class StochasticPool(_Window):
        """Stochastic pooling (Zeiler & Fergus 2013): samples in training, sum(a^2)/sum(a) in
        eval; a torch.Generator may be passed for reproducible draws."""

        def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, generator=None):
            super().__init__(kernel_size, stride, padding, ceil_mode)
            self.generator = generator

        def forward(self, input):
            return stoch(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                         self.training, generator=self.generator)

    class MixedPool(_Window):
        """alpha*max + (1-alpha)*avg with a learnable alpha (one, or one per channel), or
        random=True for Yu et al.'s 0/1 draw per output in training."""

        def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, channels=None,
                     alpha=0.5, random=False):
            super().__init__(kernel_size, stride, padding, ceil_mode)
            self.random = random
            self.alpha = torch.nn.Parameter(torch.full((channels,) if channels else (), float(alpha)))

        def forward(self, input):
            return mixed(input, self.alpha.to(input.dtype), self.kernel_size, self.stride, self.padding,
                         self.ceil_mode, self.training, self.random)

    out = []
    for cls, stem in ((SoftPool, "SoftPool"), (StochasticPool, "StochasticPool"), (MixedPool, "MixedPool")):
        cls.__name__ = cls.__qualname__ = f"{stem}{n}d"
        out.append(cls)
    return out


for _n in (1, 2, 3):
    for _c in _make_fancy(_n):
        _export(_c)
del _n, _c


@_export
class LIPPool2d(_Window):
    """LIP (Gao et al. 2019): forward(x, logits) with the logits from any module."""

    def forward(self, input, logits):
        return F.lip_pool2d(input, logits, self.kernel_size, self.stride, self.padding, self.ceil_mode)


@_export
class GatedPool2d(torch.nn.Module):
    """Gated max/avg mixing (Lee et al. 2016) with a learnable k x k gate."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        self.kernel_size, self.stride, self.padding = k, stride or k, padding
        self.gate = torch.nn.Parameter(torch.zeros(k))

    def forward(self, input):
        return F.gated_pool2d(input, self.gate.to(input.dtype), self.kernel_size, self.stride, self.padding)


@_export
class SortPool2d(torch.nn.Module):
    """sort_pool2d with `ranks` learnable weights (softmax-normalised), shared over channels."""

    def __init__(self, kernel_size, stride=None, ranks=None, softmax=True):
        super().__init__()
        k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        self.kernel_size, self.stride, self.softmax = k, stride or k, softmax
        self.weights = torch.nn.Parameter(torch.zeros(ranks or k[0] * k[1]))

    def forward(self, input):
        return F.sort_pool2d(input, self.weights.to(input.dtype), self.kernel_size, self.stride, self.softmax)


@_export
class GeM(torch.nn.Module):
    """GeM pooling with a learnable p (init 3) and eps clamp; global unless kernel_size is given."""

    def __init__(self, p=3.0, eps=1e-6, kernel_size=None, stride=None, keepdim=False):
        super().__init__()
        self.p = torch.nn.Parameter(torch.tensor(float(p)))
        self.eps, self.kernel_size, self.stride, self.keepdim = eps, kernel_size, stride, keepdim

    def forward(self, input):
        return F.gem_pool(input, self.p.to(input.dtype), self.eps, self.kernel_size, self.stride, self.keepdim)


@_export
class KMaxPool(torch.nn.Module):
    """k-max pooling along dim (values only)."""

    def __init__(self, k, dim=-1):
        super().__init__()
        self.k, self.dim = k, dim

    def forward(self, input):
        return F.kmax_pool(input, self.k, self.dim)[0]


@_export
class SpatialPyramidPool2d(torch.nn.Module):
    def __init__(self, levels=(1, 2, 4), mode="max"):
        super().__init__()
        self.levels, self.mode = tuple(levels), mode

    def forward(self, input):
        return F.spatial_pyramid_pool2d(input, self.levels, self.mode)


@_export
class SetPool(torch.nn.Module):
    def __init__(self, dim=1, mode="max"):
        super().__init__()
        self.dim, self.mode = dim, mode

    def forward(self, input, lengths=None):
        return F.set_pool(input, self.dim, self.mode, lengths)


@_export
class HorizontalPyramidPool(torch.nn.Module):
    def __init__(self, bins=(1, 2, 4, 8, 16)):
        super().__init__()
        self.bins = tuple(bins)

    def forward(self, input):
        return F.horizontal_pyramid_pool(input, self.bins)


@_export
class BatchNormReLU2d(torch.nn.BatchNorm2d):
    """torch.nn.BatchNorm2d followed by ReLU, fused (fancy.batch_norm_relu): the same
    parameters, buffers and state_dict as BatchNorm2d, so checkpoints move between the two."""

    def forward(self, input):
        if input.dim() != 4:
            raise ValueError(f"BatchNormReLU2d: expected 4-D input (N, C, H, W), got {input.dim()}-D input")
        if self.momentum is None:  # a cumulative average: BatchNorm2d's own path
            return torch.relu(super().forward(input))
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
        use_batch_stats = self.training or not self.track_running_stats
        return F.batch_norm_relu(input, self.running_mean, self.running_var, self.weight, self.bias,
                                 use_batch_stats, self.momentum, self.eps)
