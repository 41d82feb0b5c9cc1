"""batch_norm_relu: parity with torch's batch_norm followed by relu (forward, gradients,
running statistics; float64 to 1e-10, float32, bfloat16), float64 gradcheck in training
and evaluation, the same bits for 1 and 2 threads, the module's state_dict, bad input."""
import pytest
import torch

import fancy
import fancy.nn

D = torch.double
op = torch.ops.fancy.batch_norm_relu

SHAPES = [(4, 6, 5, 7), (3, 5), (2, 4, 9), (2, 3, 4, 3, 5), (1, 3, 1, 1)]


def make(shape, dtype, channels_last=False):
    x = torch.randn(shape, dtype=dtype) * 3 + 1.5  # mean far from 0: the statistics must not cancel
    if channels_last and len(shape) in (4, 5):
        x = x.contiguous(memory_format=torch.channels_last if len(shape) == 4 else torch.channels_last_3d)
    return x.requires_grad_()


def reference(x, rm, rv, w, b, training):
    return torch.relu(torch.nn.functional.batch_norm(x, rm, rv, w, b, training, 0.1, 1e-5))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_matches_batch_norm_then_relu_float64(shape, channels_last, training, affine):
    if training and shape[0] * (torch.Size(shape[2:]).numel()) == 1:
        pytest.skip("one value per channel: training is an error (tested below)")
    C = shape[1]
    x = make(shape, D, channels_last)
    w = torch.randn(C, dtype=D, requires_grad=True) if affine else None
    b = torch.randn(C, dtype=D, requires_grad=True) if affine else None
    rm1, rv1 = torch.randn(C, dtype=D), torch.rand(C, dtype=D) + 0.5
    rm2, rv2 = rm1.clone(), rv1.clone()
    y1 = op(x, rm1, rv1, w, b, training, 0.1, 1e-5)
    y2 = reference(x, rm2, rv2, w, b, training)
    torch.testing.assert_close(y1, y2, rtol=0, atol=1e-10)
    torch.testing.assert_close(rm1, rm2, rtol=0, atol=1e-12)
    torch.testing.assert_close(rv1, rv2, rtol=0, atol=1e-12)
    assert y1.is_contiguous(memory_format=torch.channels_last) == y2.is_contiguous(memory_format=torch.channels_last)
    g = torch.randn_like(y1)
    inputs = [t for t in (x, w, b) if t is not None]
    for a, e in zip(torch.autograd.grad(y1, inputs, g), torch.autograd.grad(y2, inputs, g)):
        torch.testing.assert_close(a, e, rtol=0, atol=1e-10)


@pytest.mark.parametrize("channels_last", [False, True])
def test_float32_and_bfloat16_match_torch(channels_last):
    for dtype, tol in ((torch.float32, 2e-5), (torch.bfloat16, 2e-2)):
        x = make((8, 16, 6, 6), torch.float32, channels_last).detach().to(dtype).requires_grad_()
        w = torch.randn(16, requires_grad=True)  # float32 weights with bfloat16 data, as CPU autocast leaves them
        b = torch.randn(16, requires_grad=True)
        rm1, rv1 = torch.zeros(16), torch.ones(16)
        rm2, rv2 = rm1.clone(), rv1.clone()
        y1, y2 = op(x, rm1, rv1, w, b, True, 0.1, 1e-5), reference(x, rm2, rv2, w, b, True)
        assert y1.dtype == dtype
        torch.testing.assert_close(y1.float(), y2.float(), rtol=tol, atol=tol)
        torch.testing.assert_close(rv1, rv2, rtol=1e-5, atol=1e-6)
        g = torch.randn_like(y1)
        for a, e in zip(torch.autograd.grad(y1, (x, w, b), g), torch.autograd.grad(y2, (x, w, b), g)):
            assert a.dtype == e.dtype
            scale = e.float().abs().max().item()
            torch.testing.assert_close(a.float(), e.float(), rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("channels_last", [False, True])
def test_gradcheck(training, channels_last):
    x = make((3, 4, 3, 2), D, channels_last)
    w = torch.randn(4, dtype=D, requires_grad=True)
    b = (torch.randn(4, dtype=D) * 0.3).requires_grad_()

    def f(x, w, b):  # fresh running statistics each call: gradcheck calls f many times
        return op(x, torch.zeros(4, dtype=D), torch.ones(4, dtype=D) * 2, w, b, training, 0.1, 1e-5)

    assert torch.autograd.gradcheck(f, (x, w, b))


def test_nan_propagates_like_torch():
    x = torch.randn(4, 2, 3, dtype=D)
    x[1, 0, 2] = float("nan")
    rm, rv = torch.zeros(2, dtype=D), torch.ones(2, dtype=D)
    y1 = op(x, rm, rv, None, None, False, 0.1, 1e-5)
    y2 = reference(x, rm.clone(), rv.clone(), None, None, False)
    torch.testing.assert_close(y1, y2, equal_nan=True, rtol=0, atol=1e-12)


def test_same_bits_for_one_and_two_threads():
    x = make((8, 32, 24, 24), torch.float32, True)
    w, b = torch.randn(32, requires_grad=True), torch.randn(32, requires_grad=True)
    g = torch.randn(8, 32, 24, 24).contiguous(memory_format=torch.channels_last)
    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        rm, rv = torch.zeros(32), torch.ones(32)
        y = op(x, rm, rv, w, b, True, 0.1, 1e-5)
        results.append([y, rm, rv, *torch.autograd.grad(y, (x, w, b), g)])
    torch.set_num_threads(2)
    for a, e in zip(*results):
        assert torch.equal(a, e)


def test_module_matches_batchnorm2d_and_shares_its_state_dict():
    fused, plain = fancy.nn.BatchNormReLU2d(6), torch.nn.BatchNorm2d(6)
    plain.load_state_dict(fused.state_dict())
    x = make((4, 6, 5, 5), torch.float32)
    for mode in ("train", "eval"):
        getattr(fused, mode)()
        getattr(plain, mode)()
        torch.testing.assert_close(fused(x), torch.relu(plain(x)), rtol=1e-5, atol=1e-5)
    for k, v in plain.state_dict().items():
        torch.testing.assert_close(fused.state_dict()[k], v, rtol=1e-6, atol=1e-6)
    assert fused.num_batches_tracked.item() == 1


def test_functional_form_has_batch_norms_arguments():
    x = torch.randn(4, 3, 2, 2)
    rm, rv = torch.zeros(3), torch.ones(3)
    torch.testing.assert_close(fancy.batch_norm_relu(x, rm, rv), torch.relu(x / (1 + 1e-5) ** 0.5))


@pytest.mark.parametrize("call,message", [
    (lambda: op(torch.randn(5), None, None, None, None, True, 0.1, 1e-5), "at least 2 dims"),
    (lambda: op(torch.ones(4, 3, dtype=torch.long), None, None, None, None, True, 0.1, 1e-5),
     "float32, float64 or bfloat16"),
    (lambda: op(torch.randn(4, 3), None, None, torch.ones(4), None, True, 0.1, 1e-5), "weight must have one value"),
    (lambda: op(torch.randn(4, 3), None, None, None, torch.ones(3, 1), True, 0.1, 1e-5), "bias must have one value"),
    (lambda: op(torch.randn(4, 3), torch.zeros(3), None, None, None, True, 0.1, 1e-5), "given together"),
    (lambda: op(torch.randn(4, 3), torch.zeros(2), torch.ones(2), None, None, True, 0.1, 1e-5),
     "running_mean must have one value"),
    (lambda: op(torch.randn(4, 3), None, None, None, None, False, 0.1, 1e-5), "evaluation mode"),
    (lambda: op(torch.randn(1, 3, 1, 1), None, None, None, None, True, 0.1, 1e-5), "more than 1 value per channel"),
    (lambda: op(torch.randn(4, 3), None, None, None, None, True, 0.1, -1.0), "eps (-1) must be"),
    (lambda: fancy.nn.BatchNormReLU2d(3)(torch.randn(4, 3)), "expected 4-D input"),
])
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises((RuntimeError, ValueError), match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_double_backward_is_refused():
    x = make((4, 3), D)
    y = op(x, None, None, None, None, True, 0.1, 1e-5)
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(y.sum(), x, create_graph=True)
