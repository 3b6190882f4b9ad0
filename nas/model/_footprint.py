"""The running tally of `count`: parameters, MACs, the peak activation memory and model bytes of a spec.

Peak activation memory is counted at batch 1 as the network runs layer by layer, in the order
`build` creates the layers (a residual stage: its body, then its skip, then the add). At each
layer the live set is that layer's input and output tensors, plus any tensor held for a residual
add: the residual stage's input while its body runs, and the body's output while the skip's
projection runs. The peak is the largest sum of live elements over all layers; bytes are
elements x the budget's bytes per element (`nas.config.BYTES_PER_ELEMENT`).

Conventions, the ones an inference runtime uses:
- the input image is an activation buffer like any other (as µNAS counts it), live until the
  first conv has read it;
- ReLU, BatchNorm (folded into its conv at inference), Dropout (the identity at inference),
  Flatten (a view) and a residual crop (a slice of the held input) make no new buffer;
- every conv, pooling, global average pooling, Linear and residual add writes a new one.

`nas.constraints` measures the same quantity on the built model with forward hooks; tests prove
the two agree.

Model bytes are the weights at the budget's precision. float32: 4 bytes per trainable parameter
(what torch stores). int8: the layout of onnxruntime's static quantization in QDQ format with
per-channel weights (`quantize_static(..., quant_format=QDQ, per_channel=True,
weight_type=QInt8)`) after BatchNorm is folded into its conv (as torch.onnx's export does in eval
mode): per conv or Linear weight tensor 1 byte per weight plus, per output channel, a float32
scale and an int8 zero point; per bias element an int32 value, a float32 scale and an int32 zero
point. Activation scales and zero points (5 bytes per quantized tensor) and the graph itself are
not weights and are not counted.
"""

from __future__ import annotations

INT8_PER_CHANNEL = 4 + 1  # a weight tensor's float32 scale and int8 zero point, per output channel
INT8_PER_BIAS = 4 + 4 + 4  # a bias element: int32 value, float32 scale, int32 zero point


def int8_bytes(elements: int, channels: int, biased: bool) -> int:
    """Bytes of one weight tensor (and its bias) in onnxruntime's per-channel QDQ int8 layout."""
    return elements + INT8_PER_CHANNEL * channels + (INT8_PER_BIAS * channels if biased else 0)


class Tally:
    """What `count` adds up, layer by layer, in build order."""

    def __init__(self, input_elements: int):
        self.params = self.macs = self.int8_model_bytes = 0
        self.current = input_elements  # the buffer the next layer reads
        self.peak = input_elements
        self.held = 0  # the residual stage's input, held for the add (0 outside a residual body)
        self.reading_held = False  # the next layer reads the held input itself (the body's first)

    def add(self, counted: tuple[int, int]) -> None:
        """(parameters, MACs per image) of some layers."""
        self.params += counted[0]
        self.macs += counted[1]

    def weigh(self, tensors: tuple[tuple[int, int, bool], ...]) -> None:
        """Weight tensors as (elements, output channels, has a bias), BatchNorm folded."""
        self.int8_model_bytes += sum(int8_bytes(*t) for t in tensors)

    def produce(self, *outputs: int) -> None:
        """Layers that each read the current buffer and write a new one of `outputs[i]` elements."""
        for out in outputs:
            held = 0 if self.reading_held else self.held
            self.peak = max(self.peak, held + self.current + out)
            self.current, self.reading_held = out, False

    def hold(self) -> None:
        """A residual stage starts: its input stays live until the add."""
        self.held, self.reading_held = self.current, True

    def join(self, projection: bool) -> None:
        """A residual stage ends: the skip (a 1x1 projection of the held input to the body's output
        size, or the input itself), then the add of body and skip into a new buffer."""
        body, x = self.current, self.held
        skip = body if projection else x
        if projection:  # reads the held input, writes the skip, while the body's output waits
            self.peak = max(self.peak, x + skip + body)
        self.peak = max(self.peak, body + skip + body)  # the sum has the body's shape
        self.held, self.reading_held = 0, False
