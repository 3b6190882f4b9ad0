"""Device footprint measured on a built model: peak activation memory by forward hooks.

One forward pass at batch 1, in eval mode, with a hook on every leaf module and on every residual
add (nas.model's Residual: `body(x) + skip(x)`), records which tensors each layer reads and
writes. A buffer is a tensor's storage, so views (Flatten, the residual crop), in-place ReLU and
the identity write no new one; BatchNorm and Dropout are mapped onto their input's buffer by
convention (BatchNorm folds into its conv at inference, Dropout is the identity). A buffer is live
from the layer that writes it (the input image: from the start) to the last layer that reads it;
the peak is the largest sum of live elements at any layer. This is the definition of
nas.model._footprint, observed on the real tensors instead of derived from the spec.
"""

from __future__ import annotations

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
