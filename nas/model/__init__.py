"""Layer 3: architectures. `ArchSpec` (JSON in and out), sampling from the grammar, `build(spec)`,
the analytic counts, and `blocks/`, the building blocks looked up by name."""

from nas.model._build import Counts, arch_file, build, count, load, load_baseline
from nas.model._footprint import int8_bytes
from nas.model._preprocessed import preprocessed
from nas.model._sample import RandomChooser, ScriptedChooser, choices_of, choose, sample
from nas.model._spec import ArchSpec, ConvSpec, StageSpec

__all__ = ["ArchSpec", "ConvSpec", "Counts", "RandomChooser", "ScriptedChooser", "StageSpec", "arch_file", "build",
           "choices_of", "choose", "count", "int8_bytes", "load", "load_baseline", "preprocessed", "sample"]
