"""A candidate: an architecture and its training options, drawn through an Optuna trial.

Its identity is `key` (a hash of spec and options), so the same candidate never trains twice;
`to_attrs`/`from_attrs` store it on a trial, where any worker and the finals read it back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace

from nas.config import Budget, FloatRange
from nas.model import ArchSpec, choose, sample
from nas.train import TrainOptions, averaging_options


@dataclass(frozen=True)
class Candidate:
    spec: ArchSpec
    options: TrainOptions  # the full schedule; `screening` derives the short one

    @property
    def key(self) -> str:
        text = self.spec.to_json() + json.dumps(self.options.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def screening(self, budget: Budget, trial_number: int) -> TrainOptions:
        """Rung 1: the schedule compressed to `screen_epochs`, on `screen_fraction` of the images,
        seeded per trial so two screenings of one architecture are independent draws."""
        s = budget.search
        return replace(self.options.with_schedule(self.options.schedule.compressed(s.screen_epochs)),
                       data_fraction=s.screen_fraction, seed=s.seed + trial_number)

    def to_attrs(self) -> dict[str, str]:
        return {"spec": self.spec.to_json(), "options": json.dumps(self.options.to_dict())}

    @classmethod
    def from_attrs(cls, attrs: dict) -> Candidate:
        return cls(ArchSpec.from_json(attrs["spec"]), TrainOptions.from_dict(json.loads(attrs["options"])))


# Dimensions whose effect a screening run shorter than the full schedule shows wrongly, and why.
SCREEN_BLIND = {
    "augment": "a short run favours no augmentation, whose harder images slow early learning and pay off later",
    "average": "averaged weights lead a short run by far more than they gain over the full schedule",
}


def fixed_by_screening(budget: Budget) -> dict[str, str]:
    """The dimensions the budget offers several choices of that screening cannot rank, because it
    is shorter than the full schedule: name -> why. The search fixes each at its first choice."""
    t = budget.train
    if budget.search.screen_epochs >= t.epochs:
        return {}
    offered = {"augment": len(t.augment), "average": len(t.average)}
    return {name: why for name, why in SCREEN_BLIND.items() if offered[name] > 1}


def sample_candidate(trial, budget: Budget) -> Candidate:
    """An architecture and its training options, every choice drawn through `trial`."""
    spec = sample(trial, budget.space)
    t = budget.train
    schedule = _draw_schedule(trial, t.schedules)
    if t.lr is not None and schedule.kind != "phases":  # a drawn peak lr; lr_scale still multiplies it
        schedule = replace(schedule, lr=choose(trial, "lr", t.lr))
    # A single fixed label smoothing is not a choice, and was never drawn: no trial parameter for it.
    fixed_smoothing = not isinstance(t.label_smoothing, FloatRange) and len(t.label_smoothing) == 1
    fixed = fixed_by_screening(budget)  # not drawn: screening would mis-rank them
    # (The order of the draws below is the order of the trial's parameters: keep it, and add new ones last.)
    options = TrainOptions(
        schedule=schedule.scaled(choose(trial, "lr_scale", t.lr_scale)),
        optimizer=trial.suggest_categorical("optimizer", t.optimizer),
        batch_size=trial.suggest_categorical("batch_size", t.batch_size),
        augment=t.augment[0] if "augment" in fixed else _draw_augment(trial, t.augment),
        weight_decay=choose(trial, "weight_decay", t.weight_decay),
        label_smoothing=(t.label_smoothing[0] if fixed_smoothing
                         else choose(trial, "label_smoothing", t.label_smoothing)),
        momentum=t.momentum,
        nesterov=t.nesterov,
        seed=budget.search.seed,
    )
    # Weight averaging, like label smoothing, is a trial parameter only where the budget offers a choice.
    average = (t.average[0] if len(t.average) == 1 or "average" in fixed
               else trial.suggest_categorical("average", t.average))
    return Candidate(spec, replace(options, **averaging_options(t, average)))


def _draw_schedule(trial, schedules):
    """The schedule shape; a trial parameter only where the budget offers several, so budgets of one
    shape draw exactly the parameters they drew before."""
    if len(schedules) == 1:
        return schedules[0]
    kinds = [s.kind for s in schedules]
    return schedules[kinds.index(trial.suggest_categorical("schedule", kinds))]


def _draw_augment(trial, augments):
    """One of the budget's augmentations; Optuna's categories must be plain values, so it is drawn
    by its one-line name (a preset's name is the preset itself)."""
    names = [str(a) for a in augments]
    return augments[names.index(trial.suggest_categorical("augment", names))]


def candidate_key(spec: ArchSpec, options: TrainOptions) -> str:
    """Identity of a candidate, so the same one is never trained twice."""
    return Candidate(spec, options).key
