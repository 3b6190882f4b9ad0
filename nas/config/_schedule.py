"""Learning-rate schedules as pure functions of training progress (no torch here).

The trainer wraps `Schedule.lr_at` in a `torch.optim.lr_scheduler.LambdaLR`, so one definition
serves training, the epoch log, the budget check (epochs of the schedule) and the report.
`parse_schedule(s)` read them from a budget's or study's [train] table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from nas.config._toml import Table, check_number

KINDS = ("phases", "cosine", "onecycle", "constant")

# One-cycle shape, as torch's OneCycleLR defaults: 30% warm-up from lr/25, anneal to lr/1e4.
_ONECYCLE_WARMUP_FRACTION = 0.3
_ONECYCLE_START_DIV = 25.0
_ONECYCLE_FINAL_DIV = 1e4


@dataclass(frozen=True)
class Schedule:
    """An LR schedule over `epochs` epochs.

    kind "phases": piecewise constant, `phase_lr[i]` from epoch `at_epoch[i]` on. `at_epoch`
    counts epochs from 0 (epochs completed before the drop), as the LR lambda sees them, while
    the epoch log, the CLI and reports number epochs from 1: `at_epoch = 4` is the 5th epoch.
    "cosine": `lr` annealed to 0; "onecycle": warm-up to `lr` then anneal; "constant": `lr`.
    """

    kind: str
    epochs: int
    lr: float
    at_epoch: tuple[int, ...] = ()
    phase_lr: tuple[float, ...] = ()

    @classmethod
    def phases(cls, at_epoch, phase_lr, epochs: int) -> Schedule:
        return cls("phases", epochs, float(phase_lr[0]), tuple(int(e) for e in at_epoch),
                   tuple(float(v) for v in phase_lr))

    def lr_at(self, epoch: float) -> float:
        """LR at a (fractional) epoch position; epoch 0.0 is the first step of training."""
        if self.kind == "constant":
            return self.lr
        if self.kind == "phases":
            current = self.phase_lr[0]
            for start, value in zip(self.at_epoch, self.phase_lr):
                if math.floor(epoch + 1e-9) >= start:
                    current = value
            return current
        progress = min(max(epoch / self.epochs, 0.0), 1.0)
        if self.kind == "cosine":
            return self.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
        if self.kind == "onecycle":
            start, final = self.lr / _ONECYCLE_START_DIV, self.lr / _ONECYCLE_FINAL_DIV
            if progress < _ONECYCLE_WARMUP_FRACTION:
                t = progress / _ONECYCLE_WARMUP_FRACTION
                return start + (self.lr - start) * 0.5 * (1.0 - math.cos(math.pi * t))
            t = (progress - _ONECYCLE_WARMUP_FRACTION) / (1.0 - _ONECYCLE_WARMUP_FRACTION)
            return final + (self.lr - final) * 0.5 * (1.0 + math.cos(math.pi * t))
        raise ValueError(f"unknown schedule kind {self.kind!r}; valid: {', '.join(KINDS)}")

    def epoch_lrs(self) -> list[float]:
        """The LR at the start of each epoch, as the epoch log and report print it."""
        return [self.lr_at(e) for e in range(self.epochs)]

    def scaled(self, factor: float) -> Schedule:
        """The same shape with every LR multiplied by `factor` (the search's lr-scale option)."""
        return replace(self, lr=self.lr * factor, phase_lr=tuple(v * factor for v in self.phase_lr))

    def compressed(self, epochs: int) -> Schedule:
        """The same shape squeezed into fewer epochs, for cheap screening runs.

        Phase boundaries scale proportionally; a phase that would vanish keeps its own epoch
        only when there is room, so the schedule still ends at its lowest LR.
        """
        if epochs >= self.epochs:
            return self
        if self.kind != "phases":
            return replace(self, epochs=epochs)
        starts: list[int] = []
        lrs: list[float] = []
        for start, value in zip(self.at_epoch, self.phase_lr):
            new_start = round(start * epochs / self.epochs)
            if starts and new_start <= starts[-1]:
                lrs[-1] = value  # phases collapsed onto one epoch: the later one wins
                continue
            if new_start >= epochs:
                lrs[-1] = value
                continue
            starts.append(new_start)
            lrs.append(value)
        return replace(self, epochs=epochs, at_epoch=tuple(starts), phase_lr=tuple(lrs))

    def resized(self, epochs: int) -> Schedule:
        """The same shape over `epochs` epochs, fewer (`compressed`) or more (phase boundaries
        stretched in proportion), for a study of what more or fewer epochs would give."""
        if epochs <= self.epochs:
            return self.compressed(epochs)
        if self.kind != "phases":
            return replace(self, epochs=epochs)
        return replace(self, epochs=epochs, at_epoch=tuple(round(s * epochs / self.epochs) for s in self.at_epoch))

    def describe(self) -> str:
        """A short human form with 1-based epoch ranges, as the epoch log numbers them, e.g.
        'phases 0.003 (epochs 1-4) -> 0.001 (epochs 5-20)' or 'cosine 0.01 over 20 epochs'."""
        if self.kind == "phases":
            ends = list(self.at_epoch[1:]) + [self.epochs]
            steps = " -> ".join(f"{v:g} (epoch{'s' if end - start > 1 else ''} "
                                f"{start + 1}{f'-{end}' if end - start > 1 else ''})"
                                for start, end, v in zip(self.at_epoch, ends, self.phase_lr))
            return f"phases {steps}"
        return f"{self.kind} {self.lr:g} over {self.epochs} epochs"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "epochs": self.epochs, "lr": self.lr,
                "at_epoch": list(self.at_epoch), "phase_lr": list(self.phase_lr)}

    @classmethod
    def from_dict(cls, d: dict) -> Schedule:
        return cls(d["kind"], int(d["epochs"]), float(d["lr"]), tuple(d.get("at_epoch", ())),
                   tuple(d.get("phase_lr", ())))


# Reading a [train] table's schedule keys (nas.config._vocabulary.SCHEDULE_KEYS) into Schedules.

def parse_schedule(t: Table, epochs: int) -> Schedule:
    """`schedule` as one kind, with its `lr` or `lr_phases`."""
    kind = t.string("schedule", KINDS, default="phases" if "lr_phases" in t.data else "constant")
    return _schedule_of_kind(t, kind, epochs, lr_with_phases=False)


def parse_schedules(t: Table, epochs: int) -> tuple[Schedule, ...]:
    """`schedule` as one kind or a list of kinds the search chooses from (the first is the default
    of `nas train`). In a list, `phases` takes its rates from `lr_phases` and the others from `lr`."""
    if not isinstance(t.data.get("schedule"), list):
        return (parse_schedule(t, epochs),)
    kinds = t.options("schedule", "str", choices=KINDS)  # refuses a kind listed twice
    if "phases" in kinds and "lr_phases" not in t.data:
        raise t.fail("schedule", "offers phases but [train] has no lr_phases; add lr_phases = { at_epoch = [...], "
                                 "lr = [...] } or drop phases from the list")
    others = [k for k in kinds if k != "phases"]
    if others and "lr" not in t.data:
        raise t.fail("schedule", f"offers {', '.join(others)}, which need a peak lr; add lr = 0.003 or a range "
                                 f"lr = {{ min = 0.002, max = 0.01, log = true }}")
    return tuple(_schedule_of_kind(t, kind, epochs, lr_with_phases=bool(others)) for kind in kinds)


def _schedule_of_kind(t: Table, kind: str, epochs: int, lr_with_phases: bool) -> Schedule:
    """One schedule of `kind`. `lr_with_phases`: the budget also offers a schedule that needs
    `lr`, so an `lr` beside `lr_phases` is expected rather than an ignored key."""
    if kind == "phases":
        phases = t.table("lr_phases").expect(("at_epoch", "lr"))
        at_epoch = phases.options("at_epoch", "int", minimum=0)
        lrs = phases.raw("lr")
        if not isinstance(lrs, list) or not lrs:
            raise phases.fail("lr", f"must be a non-empty list of learning rates, got {lrs!r}")
        for v in lrs:
            check_number(phases, "lr", v, 1e-12, 10.0, what="option ")
        phases.done()
        if len(at_epoch) != len(lrs):
            raise phases.fail("lr", f"has {len(lrs)} values but at_epoch has {len(at_epoch)}; give one lr per phase")
        if at_epoch[0] != 0:
            raise phases.fail("at_epoch", f"must start at 0 (the first phase), got {at_epoch[0]}")
        if list(at_epoch) != sorted(at_epoch):
            raise phases.fail("at_epoch", f"must be increasing, got {list(at_epoch)}")
        if at_epoch[-1] >= epochs:
            raise phases.fail("at_epoch", f"phase at epoch {at_epoch[-1]} starts after the last epoch "
                                          f"({epochs - 1}, 0-based); the schedule is longer than train.epochs")
        if "lr" in t.data and not lr_with_phases:  # it would be ignored: the phases carry the rates
            raise t.fail("lr", "does not apply to schedule = \"phases\", which takes its rates from lr_phases; "
                               "remove lr, or scale the phases with lr_scale")
        return Schedule.phases(at_epoch, lrs, epochs)
    if isinstance(t.data.get("lr"), dict):
        # A drawn lr: the schedule keeps the range's middle (geometric when log) until a candidate draws its own.
        lr = t.options("lr", "float", minimum=1e-12, maximum=10.0)
        return Schedule(kind, epochs, lr.middle)
    lr = t.number("lr", minimum=1e-12, maximum=10.0)
    return Schedule(kind, epochs, lr)
