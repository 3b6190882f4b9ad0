"""nas: constrained neural-architecture search for small CNNs."""

import os

from nas._version import __version__ as __version__

# torch's OpenMP threads spin-wait by default; when another process holds one of the cores, a
# 2-thread run becomes many times slower (docs/performance.md). Passive waiting avoids that.
# It must be set before torch is first imported, which every nas entry point does after this.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def load(source, tracking_uri=None):
    """A winner as a usable model: `nas.load(RUN_ID or export folder)` -> eval-mode nn.Module that
    takes uint8 0-255 or float 0-1 images [N, C, H, W] and returns logits (see nas.deploy)."""
    from nas.deploy import load as _load

    return _load(source, tracking_uri)
