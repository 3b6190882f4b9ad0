"""The search report's sections on the winner itself: its architecture (torchinfo's layer table,
checked against the logged count), how it trained (settings and the epoch log) and its accuracy on
every split, from logged figures only."""

from __future__ import annotations

import json

from nas.config import describe_augment, describe_averaging
from nas.constraints import pct as _pct
from nas.report._data import SearchData, class_label, test_errors
from nas.report._finals import seeds_section
from nas.report._format import duration as _duration
from nas.report._format import table as _table
from nas.tracking import PREDICTIONS
from nas.tracking import finite as _finite
from nas.tracking import metric as _metric

_FEATURE_TEXT = {"batch_norm": "batch normalisation", "dropout": "dropout", "gap": "global average pooling"}


def _layer_detail(module) -> str:
    import torch.nn as nn

    from nas.model.blocks.layers import Residual

    if isinstance(module, nn.Conv2d):
        k = "x".join(str(x) for x in module.kernel_size)
        pad = module.padding if isinstance(module.padding, str) else ",".join(str(p) for p in module.padding)
        depthwise = ", depthwise" if module.groups > 1 and module.groups == module.in_channels else ""
        return (f"{k}, {module.in_channels} -> {module.out_channels}{depthwise}, padding {pad}"
                + ("" if module.bias is not None else ", no bias"))
    if isinstance(module, Residual):
        skip = "identity skip" if isinstance(module.skip, nn.Identity) else "1x1 projection skip"
        return skip + (f", input cropped by {module.crop} per side" if module.crop else "")
    if isinstance(module, nn.Linear):
        return f"{module.in_features} -> {module.out_features}"
    if isinstance(module, nn.BatchNorm2d):
        return str(module.num_features)
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        return f"{module.kernel_size}x{module.kernel_size}" if isinstance(module.kernel_size, int) else ""
    if isinstance(module, (nn.Dropout, nn.Dropout2d)):
        return f"p = {module.p:g}"
    return ""


def architecture_section(s: SearchData) -> list[str]:
    from torchinfo import summary

    from nas.model import build

    b = s.budget
    model = build(s.spec, b.input_shape, b.classes)
    info = summary(model, input_size=(1, *b.input_shape), verbose=0, device="cpu")
    rows = []
    for layer in info.summary_list:
        if layer.depth == 0 or type(layer.module).__name__ == "Sequential":
            continue  # a residual block's body and skip containers: their layers have rows of their own
        shape = " x ".join(str(x) for x in list(layer.output_size)[1:])
        detail = _layer_detail(layer.module)
        name = "↳ " * min(layer.depth - 1, 1) + layer.class_name + (f" ({detail})" if detail else "")
        # a residual block's own row would count its layers' parameters a second time
        params = "" if list(layer.module.children()) else f"{layer.trainable_params:,}"
        rows.append([str(len(rows) + 1), name, shape, params])
    total = int(info.trainable_params)
    rows.append(["", "**total**", "", f"**{total:,}**"])
    c, h, w = b.input_shape
    lines = ["## Architecture", "", f"`{s.spec.describe()}`", "",
             f"Features: {', '.join(_FEATURE_TEXT[f] for f in sorted(s.spec.features())) or 'none'}. "
             f"Input {c} x {h} x {w}, {b.classes} classes. Layer table from torchinfo "
             f"(output shape per image, channels x height x width):", ""]
    lines += _table(["#", "layer", "output shape", "params"], rows, "llrr")
    if total != int(s.verdict["params"]):
        lines += ["", f"The layer table sums to {total:,} parameters but the run logged "
                      f"{int(s.verdict['params']):,}: the spec and the counted model differ."]
    lines += ["", "<details><summary>Architecture spec (spec.json)</summary>", "", "```json",
              json.dumps(s.spec.to_dict(), indent=1, sort_keys=True), "```", "", "</details>", ""]
    return lines


def training_section(s: SearchData) -> list[str]:
    o = s.options
    settings = [f"optimizer {o['optimizer']}", f"batch size {o['batch_size']}",
                f"augmentation {describe_augment(o['augment'])}"]
    averaged = o.get("average", "none") != "none"
    settings += [f"weight averaging {describe_averaging(o, s.schedule.epochs)}"] * averaged
    for key, text in (("weight_decay", "weight decay"), ("label_smoothing", "label smoothing")):
        if _finite(o.get(key)):
            settings.append(f"{text} {o[key]:g}")
    if o["optimizer"] == "sgd" and _finite(o.get("momentum")):
        settings.append(f"momentum {o['momentum']:g}" + (" (Nesterov)" if o.get("nesterov") else ""))
    if _finite(o.get("seed")):
        settings.append(f"seed {o['seed']}")
    seconds = [float(r["seconds"]) for r in s.epochs]
    d = s.budget.data
    split = (f"{d.train:,} training / {d.val:,} validation images" if d.train and d.val
             else "the dataset's default split")
    if d.path:
        split = f"{d.path}, its train/val/test split (missing splits: {d.val_fraction:g} val, {d.test_fraction:g} test)"
    fraction = o.get("data_fraction")
    used = (f"{fraction:.0%} of the training images" if _finite(fraction) and fraction < 1
            else "all training images")
    lines = ["## Training", "",
             f"- Data: {d.dataset}, {split}; {used}, trained from scratch.",
             f"- Settings: {', '.join(settings)}.",
             f"- LR schedule: {s.schedule.describe()}.",
             f"- Time: {sum(seconds) / len(seconds):.2f} s per epoch on average, {_duration(sum(seconds))} in total.",
             "", "Epoch log (`epochs.json` of the winner; lr is the rate the epoch trained at"
             + ("; val is the averaged weights', the model reported, raw val acc the trained weights'" if averaged
                else "") + "):", ""]
    n = len(s.epochs)
    raw = [[_pct(r["raw_val_accuracy"]) if _finite(r.get("raw_val_accuracy")) else "-"] if averaged else []
           for r in s.epochs]
    rows = [[f"{int(r['epoch'])}/{n}", f"{r['lr']:.6g}", f"{r['train_loss']:.4f}", _pct(r["train_accuracy"]),
             f"{r['val_loss']:.4f}", _pct(r["val_accuracy"]), *raw_cell, f"{r['seconds']:.2f}"]
            for r, raw_cell in zip(s.epochs, raw)]
    lines += _table(["epoch", "lr", "train loss", "train acc", "val loss", "val acc"]
                    + ["raw val acc"] * averaged + ["seconds"], rows, "rrrrrrr" + "r" * averaged)
    best = max(s.epochs, key=lambda r: r["val_accuracy"])
    lines += ["", f"Best epoch by validation accuracy: {int(best['epoch'])} ({_pct(best['val_accuracy'])}); "
                  f"the reported model is the one after the last epoch, not the best one.", ""]
    return lines


def accuracy_section(s: SearchData) -> list[str]:
    w = s.winner
    train, val, test = (_metric(w, f"final_{k}_accuracy") for k in ("train", "val", "test"))
    lines = ["## Accuracy", "", "Of the final model, evaluated after the last epoch:", ""]
    lines += _table(["split", "accuracy"], [["train", _pct(train)], ["validation", _pct(val)],
                                            ["test", _pct(test)]], "lr")
    lines += seeds_section(s)
    gap = (train - val) * 100
    lines += ["", f"- Overfitting gap (train - validation): {gap:+.2f} percentage points.",
              "- Validation data chose the winner (screening ranks and the choice among finalists); the test "
              "split was used for nothing but reporting."]
    if s.test.usable:
        errors = test_errors(s)
        n = len(s.test.labels)
        lines += [f"- Test errors: {len(errors):,} of {n:,} test images (from `{PREDICTIONS}` against the "
                  f"test labels; data fingerprint matches the run's)."]
        if round((1 - test) * n) != len(errors):
            lines += [f"- Note: the logged test accuracy {_pct(test, 3)} implies {round((1 - test) * n):,} errors, "
                      f"the logged predictions give {len(errors):,}."]
        pairs: dict[tuple[int, int], int] = {}
        for _, t, p in errors:
            pairs[(t, p)] = pairs.get((t, p), 0) + 1
        top = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        if top:
            lines += ["- Most frequent confusions (true -> predicted): " + ", ".join(
                f"{class_label(s, t)} -> {class_label(s, p)} ({c})" for (t, p), c in top) + "."]
    else:
        lines += [f"- Test errors are not counted here: {s.test.note}."]
    return lines + [""]
