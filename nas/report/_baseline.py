"""The search report's baseline section: each `[search] baseline` net beside the winner on every
split, with its counts and the budget's limits. A baseline is shown, never crowned."""

from __future__ import annotations

from nas.constraints import pct as _pct
from nas.constraints import verdict
from nas.errors import NasError
from nas.model import ArchSpec
from nas.report._data import SearchData
from nas.report._format import table as _table
from nas.tracking import SPEC, VERDICT
from nas.tracking import finite as _finite


def baseline_section(s: SearchData) -> list[str]:
    """The winner beside each [search] baseline on every split, counts and the budget's limits."""
    if not s.baselines:
        return []
    lines = ["## Baseline", ""]
    w = s.winner
    for b in s.baselines:
        name = b.tags.get("baseline_file", "baseline")
        verdict_b = b.json_artifact(VERDICT)
        try:
            spec_b = ArchSpec.from_json(b.artifact(SPEC).read_text()).describe()
        except (NasError, OSError, ValueError):
            spec_b = b.params.get("arch", "?")
        lines += [f"`{name}` ([search] baseline, MLflow run `{b.run_id}`), `{spec_b}`, trained from scratch with the "
                  f"full schedule and the budget's first choice of every training option "
                  f"({b.params.get('optimizer', '?')}, batch size {b.params.get('batch_size', '?')}, augmentation "
                  f"{b.params.get('augment', '?')}). It is shown, not crowned: the winner is chosen among the "
                  f"searched finalists only.", ""]
        rows = []
        for split in ("train", "val", "test"):
            key = f"final_{split}_accuracy"
            wv, bv = w.metrics.get(key), b.metrics.get(key)
            diff = f"{100 * (bv - wv):+.2f}" if _finite(wv) and _finite(bv) else "-"
            rows.append([{"val": "validation"}.get(split, split) + " accuracy", _pct(wv) if _finite(wv) else "-",
                         _pct(bv) if _finite(bv) else "-", diff])
        for key, label in (("params", "parameters"), ("macs_per_image", "MACs per image")):
            wv, bv = s.verdict.get(key), verdict_b.get(key)
            both = _finite(wv) and _finite(bv)  # an older or damaged verdict may lack a count: show '-'
            rows.append([label, f"{int(wv):,}" if _finite(wv) else "-", f"{int(bv):,}" if _finite(bv) else "-",
                         f"{int(bv) - int(wv):+,}" if both else "-"])
        lines += _table(["", "winner", "baseline", "baseline - winner"], rows, "lrrr")
        broken = verdict_b.get("violations") or []
        meets = _finite(b.metrics.get("final_val_accuracy")) and b.metrics["final_val_accuracy"] >= s.budget.target.min
        lines += ["", "The baseline " + ("keeps every limit of the budget" if not broken else
                                         "breaks the budget: " + "; ".join(broken))
                  + f" and {'reaches' if meets else 'misses'} the target ({_pct(s.budget.target.min)} validation) "
                    f"with its single seed."]
        better = [sp for sp in ("val", "test") if _finite(b.metrics.get(f"final_{sp}_accuracy"))
                  and b.metrics[f"final_{sp}_accuracy"] > w.metrics.get(f"final_{sp}_accuracy", 1.0)]
        if better:
            noise = ""
            if len(s.seeds) > 1:
                spread = verdict.summarise_seeds([r["val_accuracy"] for r in s.seeds]).std
                noise = f" (the winner's own seeds spread {100 * spread:.2f} points, std, on validation)"
            lines += ["It is more accurate than the winner on "
                      + " and ".join({"val": "validation", "test": "test"}[sp] for sp in better)
                      + f". Both are single training runs, so the difference carries seed-to-seed noise{noise}."]
        lines += [""]
    return lines
