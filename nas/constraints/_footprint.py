"""Device footprint measured on a built model: peak activation memory by forward hooks, and model
bytes from its weight tensors.

One forward pass at batch 1, in eval mode, with a hook on every leaf module and on every residual
add (nas.model's Residual: `body(x) + skip(x)`), records which tensors each layer reads and
writes. A buffer is a tensor's storage, so views (Flatten, the residual crop), in-place ReLU and
the identity write no new one; BatchNorm and Dropout are mapped onto their input's buffer by
convention (BatchNorm folds into its conv at inference, Dropout is the identity). A buffer is live
from the layer that writes it (the input image: from the start) to the last layer that reads it;
the peak is the largest sum of live elements at any layer. This is the definition of
nas.model._footprint, observed on the real tensors instead of derived from the spec.

Model bytes read the built model's own tensors: float32, 4 bytes per trainable parameter; int8,
onnxruntime's per-channel QDQ layout (nas.model._footprint) of every Conv2d and Linear weight,
with a bias where the layer has one or a BatchNorm2d folds into it. An exported file is larger
than this count by what is not weights: the graph (node and tensor names, shapes, attributes,
shape constants) and, in the int8 QDQ file, a float32 scale and an int8 zero point for every
quantized activation tensor. At float32 the count is torch's trainable parameters (BatchNorm's
affine included, its running statistics not), whatever an export folds.
"""

from __future__ import annotations

from nas.config import BYTES_PER_ELEMENT

FOLDED = ("BatchNorm2d", "Dropout", "Dropout2d")  # write no buffer at inference, by convention


def measure_peak_activation_elements(model, input_shape: tuple[int, int, int]) -> int:
    """The peak number of live activation elements of one image through `model` (eval mode)."""
    import torch

    events: list[tuple[list, object, bool]] = []  # (tensors read, tensor written, folded)
    handles = []

    def on_leaf(module, args, output):
        events.append(([a for a in args if torch.is_tensor(a)], output, type(module).__name__ in FOLDED))

    for module in model.modules():
        if not list(module.children()):
            handles.append(module.register_forward_hook(on_leaf))
        elif hasattr(module, "body") and hasattr(module, "skip"):  # a residual add: its own event
            handles += _residual_hooks(module, events)
    was_training = model.training
    model.eval()
    image = torch.zeros(1, *input_shape)
    try:
        with torch.no_grad():
            model(image)  # `events` keeps every tensor alive, so no storage is reused in the pass
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return _peak(image, events)


def count_model_bytes(model, precision: str) -> int:
    """The bytes of `model`'s weights at `precision` (float32 or int8), from its own tensors."""
    import torch.nn as nn

    from nas.model import int8_bytes

    if precision != "int8":
        return BYTES_PER_ELEMENT[precision] * sum(p.numel() for p in model.parameters() if p.requires_grad)
    tensors: list[list] = []  # [elements, output channels, has a bias], in module order
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            tensors.append([module.weight.numel(), module.weight.shape[0], module.bias is not None])
        elif isinstance(module, nn.BatchNorm2d):  # folds into the conv before it, giving it a bias
            tensors[-1][2] = True
    return sum(int8_bytes(*t) for t in tensors)


def _residual_hooks(module, events: list) -> list:
    """Record the add of body and skip outputs, after both have run."""
    outputs = {}
    return [module.body.register_forward_hook(lambda m, args, out: outputs.__setitem__("body", out)),
            module.skip.register_forward_hook(lambda m, args, out: outputs.__setitem__("skip", out)),
            module.register_forward_hook(lambda m, args, out: events.append(
                ([outputs["body"], outputs["skip"]], out, False)))]


def _peak(image, events: list) -> int:
    alias: dict[int, int] = {}  # storage of a folded layer's output -> its input's buffer
    size, first, last = {}, {}, {}

    def buffer(t) -> int:
        pointer = t.untyped_storage().data_ptr()
        return alias.get(pointer, pointer)

    def elements(t) -> int:
        return t.untyped_storage().nbytes() // t.element_size()

    start = buffer(image)
    size[start], first[start], last[start] = elements(image), -1, -1
    for i, (reads, written, folded) in enumerate(events):
        for t in reads:
            last[buffer(t)] = i
        if folded:
            alias[written.untyped_storage().data_ptr()] = buffer(reads[0])
            continue
        b = buffer(written)
        if b not in size:  # a new buffer (a view or an in-place op reuses its input's)
            size[b], first[b] = elements(written), i
        last[b] = max(last.get(b, i), i)
    return max(sum(size[b] for b in size if first[b] <= i <= last[b]) for i in range(len(events)))
