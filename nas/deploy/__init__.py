"""Layer 7: the winner outside the search: `verify` (recount and re-evaluate), `export`, `load`
and `predict`."""

from nas.deploy._export import export
from nas.deploy._load import load, predict
from nas.deploy._verify import verify

__all__ = ["export", "load", "predict", "verify"]
