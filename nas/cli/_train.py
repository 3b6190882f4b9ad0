"""`nas train`: one architecture with the budget's training settings."""

from __future__ import annotations

from pathlib import Path

from nas.cli._common import budget_with_baseline, console
from nas.config import AUGMENTS, AVERAGES, OPTIMIZERS


def cmd_train(args) -> int:
    import torch

    from nas import data
    from nas.config import describe_averaging, first_option
    from nas.constraints import check
    from nas.errors import ConfigError, SpecError
    from nas.model import ArchSpec
    from nas.train import first_choice_options, run_spec

    budget = budget_with_baseline(args.budget)
    try:
        spec = ArchSpec.from_json(Path(args.arch).read_text())
    except OSError as exc:
        raise SpecError(f"{args.arch}: cannot read the architecture spec ({exc.strerror})") from None
    t = budget.train
    epochs = args.epochs or t.epochs
    if epochs > budget.limits.max_epochs:
        raise ConfigError(args.budget, "--epochs", f"{epochs} exceeds budget.max_epochs = {budget.limits.max_epochs}")
    schedule = t.schedule if epochs == t.epochs else t.schedule.compressed(epochs)
    options = first_choice_options(t, seed=args.seed, schedule=schedule.scaled(first_option(t.lr_scale)),
                                   optimizer=args.optimizer, batch_size=args.batch_size, augment=args.augment,
                                   average=args.average, threads=args.threads)
    dataset = data.from_config(budget.data)
    verdict = check(spec, budget, epochs)
    console.print(f"{spec.describe()}")
    averaging = describe_averaging(options.to_dict(), epochs)
    console.print(f"{verdict.params:,} params (torchinfo), {verdict.macs_per_image:,} MACs/image (fvcore); "
                  f"{options.optimizer}, batch {options.batch_size}, augment {options.augment}, "
                  f"{schedule.describe()}" + (f", average {averaging}" if options.average != "none" else "")
                  + (f", weight decay {options.weight_decay:g}" if options.weight_decay else "")
                  + (f", label smoothing {options.label_smoothing:g}" if options.label_smoothing else ""))
    for v in verdict.violations:
        console.print(f"[yellow]warning: breaks the budget: {v.message}[/]")

    def show(record) -> None:
        console.print(f"Epoch {record.epoch:2d}/{epochs} | LR: {record.lr:.6f} | train loss {record.train_loss:.4f} "
                      f"acc {record.train_accuracy:.4f} | val loss {record.val_loss:.4f} acc {record.val_accuracy:.4f}"
                      + (f" (raw {record.raw_val_accuracy:.4f})" if record.raw_val_accuracy is not None else "")
                      + f" | {record.seconds:.1f} s", markup=False)

    # The same call as a search's final: a spec trained here reproduces the search's figures.
    run = run_spec(spec, options, dataset, callbacks=[show], evaluate_on=("test",),
                   checkpoint_path=Path(args.checkpoint) if args.checkpoint else None)
    result = run.result
    _, test_acc, test_pred = run.evaluations["test"]
    wrong = int((test_pred != dataset.test.labels).sum())
    console.print(f"final: val {result.final.val_accuracy:.4f}, test {test_acc:.4f} ({wrong} of "
                  f"{len(dataset.test):,} test images wrong), {result.seconds / len(result.epochs):.1f} s/epoch")
    if args.save:
        torch.save(result.model.state_dict(), args.save)
    met = result.final.val_accuracy >= budget.target.min
    console.print(f"target {budget.target.metric} >= {budget.target.min}: {'met' if met else 'not met'}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("train", help="train one architecture with the budget's training settings")
    p.add_argument("budget", help="budget TOML file: data, limits and training settings")
    p.add_argument("--arch", required=True, help="architecture spec JSON file")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs to train, the schedule compressed to fit (default: the budget's train.epochs)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per step (default: the budget's first batch_size option)")
    p.add_argument("--optimizer", default=None, choices=OPTIMIZERS,
                   help="(default: the budget's first optimizer option)")
    p.add_argument("--augment", default=None, choices=AUGMENTS,
                   help="affine: rotation +-10 deg, shift +-8%%, scale 0.9-1.1; rotate: rotation +-7 deg only")
    p.add_argument("--average", default=None, choices=AVERAGES,
                   help="weight averaging (default: the budget's first choice); ema/swa use the budget's "
                        "ema_decay / swa_start_epoch / swa_lr; epoch lines show the raw weights' val acc too")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, batch order and augmentation (default 0)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--checkpoint", default=None, help="checkpoint file: written each epoch, resumed from if present")
    p.add_argument("--save", default=None, help="write the trained state_dict here")
    p.set_defaults(func=cmd_train)
