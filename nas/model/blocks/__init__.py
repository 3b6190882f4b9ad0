"""Building blocks of the stage grammar, one module each, with its analytic count beside its builder.

Counts follow the authoritative counters (see nas.model): torchinfo's trainable parameters, and
fvcore's per-image MACs in eval mode (conv/linear MACs, bias not counted; BatchNorm 2 per output
element). `nas.model` assembles whole networks from these blocks.
"""
