"""A study's records read back from MLflow runs (also runs logged by other tools: `--from-mlflow`)."""

from __future__ import annotations

from nas.study._design import ALIASES


def parse_level(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def records_from_runs(runs: list, factors: list[str], metric: str = "final_val_accuracy") -> list[dict]:
    """Run records for the statistics: levels from `factor.<name>` params (or plain params)."""
    records = []
    for r in runs:
        levels = {}
        for f in factors:
            raw = r.params.get(f"factor.{f}", r.params.get(f))
            if raw is None:  # runs logged before a factor was renamed
                raw = next((r.params[f"factor.{old}"] for old, new in ALIASES.items()
                            if new == f and f"factor.{old}" in r.params), None)
            if raw is None:
                break
            levels[f] = parse_level(raw)
        else:
            if metric not in r.metrics:
                continue
            curve = r.metric_history("val_accuracy")
            records.append({"levels": levels, "seed": r.params.get("seed"), "val_accuracy": r.metrics[metric],
                            "train_accuracy": r.metrics.get("final_train_accuracy",
                                                            r.metrics.get("train_accuracy", r.metrics[metric])),
                            "params": int(float(r.metrics.get("params", r.params.get("params", 0)) or 0)),
                            "curve": curve or [r.metrics[metric]], "run_id": r.run_id,
                            "seconds": r.metrics.get("train_seconds"), "device": r.params.get("device")})
    return records


def factors_from_runs(runs: list, max_levels: int = 8) -> list[str]:
    """Factors of an existing experiment: logged params that vary across runs, with few levels."""
    values: dict[str, set] = {}
    for r in runs:
        for k, v in r.params.items():
            values.setdefault(k, set()).add(v)
    skip = {"seed", "params", "arch", "options", "device"}
    names = [k for k, v in values.items() if 1 < len(v) <= max_levels and k not in skip
             and all(k in r.params for r in runs)]
    return sorted(names)
