"""What the live view shows, read from the storage (trials) and MLflow (finals' epochs).

`Watch.poll()` compares the study and the running finals with what it saw last time and returns
one line per new event (a candidate started, finished, was pruned or failed; a final finished an
epoch), updating `Progress` on the way. Workers write nothing for the view: it sees what they
store, so local and remote workers show up alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from nas.tracking import records


@dataclass
class Progress:
    """What a live view shows; rendered by the CLI."""

    phase: str = "screening"
    target_trials: int = 0
    trained: int = 0
    running: int = 0
    sampled: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    pruned: int = 0
    failed: int = 0
    best_screen: float | None = None
    finals_done: int = 0
    finals_total: int = 0
    # (role, label) -> the last epoch of each full training still running:
    # {"epoch", "epochs", "val_accuracy", "elapsed_s"}
    training: dict[tuple[str, int], dict] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    last_event: str = ""

    @property
    def elapsed_s(self) -> float:
        return time.time() - self.started

    def finals_eta_s(self) -> float | None:
        """Seconds until the running finals end, from their mean epoch time so far (None before
        the first epoch); finals not started yet are not counted."""
        finals = [e for (role, _), e in self.training.items() if role == records.ROLE_FINAL]
        if not finals:
            return None
        return max((e["epochs"] - e["epoch"]) * e["elapsed_s"] / e["epoch"] for e in finals)


class Watch:
    """Turns changes in the study and in the running finals into Progress and event lines."""

    def __init__(self, study, tracker, progress: Progress):
        self.study, self.tracker, self.progress = study, tracker, progress
        self._seen: dict[int, str] = {}  # trial number -> the last state reported
        self._primed = False  # the first poll only learns what is there (a resumed search's past)
        # running full trainings: run id -> (label such as "final 12" or "seed 1 of trial 12", epochs)
        self.finals: dict[str, tuple[str, int]] = {}

    def poll(self) -> list[str]:
        events = self._poll_trials()
        if not self._primed:
            self._primed, events = True, []
        for run_id, (label, epochs) in list(self.finals.items()):
            events += self._poll_final(run_id, label, epochs)
        return events

    def _poll_trials(self) -> list[str]:
        from optuna.trial import TrialState

        p = self.progress
        p.trained = p.pruned = p.sampled = p.failed = p.running = 0
        p.rejected = {}
        events = []
        for t in self.study.get_trials(deepcopy=False):
            a = t.user_attrs
            if t.state == TrialState.RUNNING:
                if a.get("claimed") and a.get("spec"):
                    p.running += 1
                    if self._seen.get(t.number) != "running":
                        self._seen[t.number] = "running"
                        events.append(f"trial {t.number}: training {_describe(a['spec'])}")
                continue
            p.sampled += 1
            if "rejected_by" in a:
                p.rejected[a["rejected_by"]] = p.rejected.get(a["rejected_by"], 0) + 1
                continue
            state = t.state.name.lower()
            new = self._seen.get(t.number) != state
            self._seen[t.number] = state
            if t.state == TrialState.FAIL:
                if a.get("training_failed"):
                    p.failed += 1
                    if new:
                        events.append(f"trial {t.number} failed: {a.get('failure', 'unknown')}")
            elif a.get("trained"):
                p.trained += 1
                if t.state == TrialState.PRUNED:
                    p.pruned += 1
                    if new:
                        events.append(f"trial {t.number} pruned at epoch {a.get('pruned_at_epoch')}")
                elif t.values:
                    p.best_screen = max(p.best_screen or 0.0, t.values[0])
                    if new:
                        events.append(f"trial {t.number}: val {t.values[0]:.4f}, {a.get('params', 0):,} params")
        return events

    def _poll_final(self, run_id: str, label: str, epochs: int) -> list[str]:
        key = (records.ROLE_FINAL, label)
        shown = self.progress.training.get(key, {}).get("epoch", 0)
        events = []
        elapsed = 0.0
        for e in records.epoch_history(self.tracker, run_id):
            elapsed += e["seconds"]
            if e["epoch"] > shown:
                self.progress.training[key] = {"epoch": e["epoch"], "epochs": epochs,
                                               "val_accuracy": e["val_accuracy"], "elapsed_s": elapsed}
                events.append(f"{label}: epoch {e['epoch']}/{epochs}, val {e['val_accuracy']:.4f}")
        return events

    def final_started(self, run_id: str, label: str, epochs: int) -> None:
        self.finals[run_id] = (label, epochs)

    def final_ended(self, run_id: str) -> list[str]:
        """The last epochs of a full training that ended between polls, then it leaves the view."""
        label, epochs = self.finals.pop(run_id)
        events = self._poll_final(run_id, label, epochs)
        self.progress.training.pop((records.ROLE_FINAL, label), None)
        return events


def _describe(spec_json: str) -> str:
    from nas.model import ArchSpec

    try:
        return ArchSpec.from_json(spec_json).describe()
    except Exception:  # noqa: BLE001 - the view must not fail on a stored spec it cannot read
        return "?"
