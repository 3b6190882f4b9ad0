"""`BatchNorm2d`: torch's layer, with a faster training pass on the CPU for channels_last input.

This layer does torch's maths as four sweeps over contiguous memory (nas/train/cpu/batchnorm.c):
per-channel sums, the affine output, the gradient sums, the input gradient. Why it exists (torch's
CPU batch norm is the slowest part of a small CNN's training step) and what it buys:
docs/performance.md.

Where it is used: only inside training. `nas.model.build` makes plain torch models (nn.BatchNorm2d,
nn.ReLU), so building, counting, verifying and exporting need no C toolchain; `nas.train.train`
calls `convert` on the CPU when `kernel_available()`, and `revert` before it returns the model.
Both swap layers in place and share the parameter and buffer tensors (as
nn.SyncBatchNorm.convert_sync_batchnorm does): the optimizer, checkpoints and the returned
state_dict see the same tensors under the same keys as on the plain model.

The layer is a drop-in subclass: same parameters, buffers and state_dict keys as nn.BatchNorm2d,
same running-statistics update, and evaluation (and anything that is not CPU float32 channels_last
in training mode) goes to torch's own kernel. The C source is compiled once per machine and
compiler (`_kernels.py`); without a C compiler the layer falls back to torch's kernel, with one
warning saying so.

Maths (M = N*H*W values per channel, k = the channel's first value, S1 = sum (x - k), S2 =
sum (x - k)^2, sums in double): mean = k + S1/M, var = S2/M - (S1/M)^2 (shifted by k so the
subtraction does not cancel when |mean| >> std); y = (x - c) * scale + shift with c = (float)mean,
scale = weight/sqrt(var + eps), shift = bias - (mean - c) * scale. Backward, with Sg = sum g and
Sgx = sum g*(x - mean): dbias = Sg, dweight = Sgx/sqrt(var + eps),
dx = scale * (g - Sg/M - (x - mean) * Sgx / (M (var + eps))).
"""

from __future__ import annotations

import ctypes

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from nas.train.cpu import _kernels as kernels

_library: ctypes.CDLL | None = None  # nas/batchnorm.c, with its signatures declared; see _load


def _load() -> ctypes.CDLL | None:
    global _library
    if _library is None:
        library = kernels.load("batchnorm")
        if library is None:
            return None
        i64, ptr, flag, f64 = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int, ctypes.c_double
        library.nas_bn_forward.argtypes = [ptr, i64, i64, ptr, ptr, f64, flag, ptr, ptr, ptr, ptr, f64, flag]
        library.nas_bn_backward.argtypes = [ptr, ptr, i64, i64, flag, f64, ptr, ptr, ptr, ptr, flag]
        library.nas_bn_forward.restype = library.nas_bn_backward.restype = ctypes.c_int
        _library = library
    return _library


def kernel_available() -> bool:
    """Whether training on the CPU uses the nas kernel (building it now if needed)."""
    return _load() is not None


def _ptr(t: torch.Tensor | None) -> int | None:
    return t.data_ptr() if t is not None else None


class _BatchNormFunction(torch.autograd.Function):
    """Batch-statistics normalisation (then ReLU if `relu`) of a channels_last float32 tensor.

    Updates `running_mean` and `running_var` in place with `momentum` when they are given."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps, relu, running_mean, running_var, momentum):
        channels = x.shape[1]
        rows = x.numel() // channels
        y = torch.empty_like(x, memory_format=torch.channels_last)
        stats = torch.empty(4, channels, dtype=torch.float64)  # mean, var, scale, shift (see batchnorm.c)
        # (one C call per pass and no small torch ops: at batch 32 those cost as much as the sweeps)
        if _library.nas_bn_forward(x.data_ptr(), rows, channels, _ptr(weight), _ptr(bias), eps, int(relu),
                                   y.data_ptr(), stats.data_ptr(), _ptr(running_mean), _ptr(running_var),
                                   momentum, torch.get_num_threads()):
            raise MemoryError("nas batch norm: out of memory for the kernel's scratch space")
        ctx.save_for_backward(x, stats)
        ctx.eps, ctx.relu, ctx.has_weight, ctx.has_bias = eps, relu, weight is not None, bias is not None
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, stats = ctx.saved_tensors
        channels = x.shape[1]
        rows = x.numel() // channels
        grad = grad.contiguous(memory_format=torch.channels_last)
        grad_x = torch.empty_like(x, memory_format=torch.channels_last)
        grad_weight = x.new_empty(channels) if ctx.has_weight else None
        grad_bias = x.new_empty(channels) if ctx.has_bias else None
        if _library.nas_bn_backward(grad.data_ptr(), x.data_ptr(), rows, channels, int(ctx.relu), ctx.eps,
                                    stats.data_ptr(), grad_x.data_ptr(), _ptr(grad_weight), _ptr(grad_bias),
                                    torch.get_num_threads()):
            raise MemoryError("nas batch norm: out of memory for the kernel's scratch space")
        return grad_x, grad_weight, grad_bias, None, None, None, None, None


class BatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d whose CPU training pass uses the nas kernel (see the module docstring).

    `fuse_relu=True` is only for a layer that a ReLU directly follows: on the kernel path this
    layer applies that ReLU itself (saving two sweeps over the tensor) and marks its output so
    that `nas.batchnorm.ReLU` passes it through; a plain nn.ReLU would apply it again, harmlessly.
    """

    def __init__(self, *args, fuse_relu: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fuse_relu = fuse_relu

    def extra_repr(self) -> str:
        return super().extra_repr() + (", fuse_relu=True" if self.fuse_relu else "")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        use_batch_stats = self.training or not self.track_running_stats
        if not (use_batch_stats and _fast_path_applies(x, self) and _load() is not None):
            return super().forward(x)
        self._check_input_dim(x)
        update = self.training and self.track_running_stats
        momentum = 0.0 if self.momentum is None else self.momentum
        if update:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average, as torch does
                momentum = 1.0 / float(self.num_batches_tracked)
        y = _BatchNormFunction.apply(x, self.weight, self.bias, self.eps, self.fuse_relu,
                                     self.running_mean if update else None,
                                     self.running_var if update else None, momentum)
        if self.fuse_relu:
            y._nas_rectified = True
        return y


class ReLU(nn.ReLU):
    """nn.ReLU that passes through a tensor a `BatchNorm2d(fuse_relu=True)` already rectified."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if getattr(x, "_nas_rectified", False):
            return x
        return super().forward(x)


def _fast_path_applies(x: torch.Tensor, layer: nn.BatchNorm2d) -> bool:
    # the kernel reads parameters and buffers through raw pointers: they must be contiguous float32 too
    tensors = [t for t in (layer.weight, layer.bias, layer.running_mean, layer.running_var) if t is not None]
    return (x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4
            and all(t.dtype == torch.float32 and t.is_contiguous() and t.device.type == "cpu" for t in tensors)
            and x.numel() // max(x.shape[1], 1) > 1  # one value per channel: torch's own error
            and x.is_contiguous(memory_format=torch.channels_last)
            and not torch.jit.is_tracing() and not torch.jit.is_scripting())


def _swap(old: nn.BatchNorm2d, new: nn.BatchNorm2d) -> nn.BatchNorm2d:
    # the same Parameter and buffer objects, not copies: an optimizer or a caller holding them stays valid
    for name, parameter in old.named_parameters(recurse=False):
        setattr(new, name, parameter)
    for name, buffer in old.named_buffers(recurse=False):
        setattr(new, name, buffer)
    new.train(old.training)
    return new


def convert(module: nn.Module) -> nn.Module:
    """`module` with every plain nn.BatchNorm2d swapped, in place, for the nas one sharing its
    parameter and buffer tensors; in an nn.Sequential, a BatchNorm2d directly followed by an nn.ReLU
    gets fuse_relu and that ReLU becomes nas.batchnorm.ReLU. Other modules are kept. Returns `module`
    (or the new layer when `module` itself is an nn.BatchNorm2d). `revert` undoes it."""
    if type(module) is nn.BatchNorm2d:
        return _swap(module, BatchNorm2d(module.num_features, module.eps, module.momentum, module.affine,
                                         module.track_running_stats, device="meta"))
    names = [name for name, _ in module.named_children()]
    for name in names:
        module.add_module(name, convert(getattr(module, name)))
    if isinstance(module, nn.Sequential):
        for name, following in zip(names, names[1:]):
            bn, relu = getattr(module, name), getattr(module, following)
            if type(bn) is BatchNorm2d and type(relu) is nn.ReLU:
                bn.fuse_relu = True
                module.add_module(following, ReLU(relu.inplace))
    return module


def revert(module: nn.Module) -> nn.Module:
    """The inverse of `convert`: every nas BatchNorm2d and ReLU back to torch's, in place and sharing
    tensors, so the model holds only torch classes again."""
    if type(module) is BatchNorm2d:
        return _swap(module, nn.BatchNorm2d(module.num_features, module.eps, module.momentum, module.affine,
                                            module.track_running_stats, device="meta"))
    if type(module) is ReLU:
        return nn.ReLU(module.inplace)
    for name, child in list(module.named_children()):
        module.add_module(name, revert(child))
    return module
