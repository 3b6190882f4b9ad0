"""`nas export RUN_ID`: a verified winner as a self-contained folder that needs no nas to run.

The folder holds the model with preprocessing folded in (uint8 0-255 images in `model.*`, float
0-1 images in `model_float.*`, [N, C, H, W] with any N, logits out) as a torch.export program
(`pt2`) or an ONNX graph (`onnx`, run with onnxruntime); the weights as a state_dict; `model.json`
(spec, classes, input shape, normalisation, counts, verified accuracies per seed, run ids, data
fingerprint, the self-check's figures); and a generated `MODEL_CARD.md`.

Every export checks itself before it returns: the exported artifact's logits on the whole test
split must equal the tracked model's within `TOLERANCE`, and its test accuracy must equal the one
`nas verify` re-evaluates. A failed check removes nothing already written but raises, so the CLI
exits 1 and the figures say what differed.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from nas.deploy._load import MODEL_JSON, WEIGHTS_FILE, preprocessed
from nas.errors import NasError

FORMATS = ("pt2", "onnx")
TOLERANCE = 1e-4
INSTALL_ONNX = "pip install 'nas[export]'  (onnx, onnxscript, onnxruntime)"


class ExportCheckFailed(NasError):
    """The exported artifact does not reproduce the tracked model."""

    exit_code = 1


@dataclass
class Exported:
    folder: Path
    files: list[str]
    checks: dict  # per input kind: max_abs_diff, exported_test_accuracy, verified_test_accuracy


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise NasError(f"ONNX export needs {exc.name}: {INSTALL_ONNX}") from None


def export(run_id: str, fmt: str = "pt2", out_dir: Path | None = None, tracking_uri: str | None = None,
           on_step=lambda message: None) -> Exported:
    """Verify the run, write the export folder, check the artifact against the tracked model."""
    import torch

    from nas import data as data_module
    from nas.deploy._verify import load_weights, resolve_final_run, verify
    from nas.tracking import Tracker, records
    from nas.train import evaluate

    if fmt not in FORMATS:
        raise NasError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "onnx":
        _require_onnx()
    tracker = Tracker(tracking_uri)
    parent, run = resolve_final_run(tracker, run_id)
    on_step(f"verifying run {run.run_id} (and its seed runs) from their stored artifacts")
    verification = verify(tracker, run_id)
    budget = verification.budget
    final = records.load_final(run)
    info = run.json_artifact(records.MODEL_INFO)
    weights = final.weights_path()
    net = load_weights(run, final.spec, budget, weights)
    model = preprocessed(net, info["mean"], info["std"])

    dataset = data_module.from_config(budget.data)
    _, verified_test, _ = evaluate(net, dataset.test, dataset)
    test_images, test_labels = dataset.test.images, dataset.test.labels

    folder = Path(out_dir) if out_dir else Path("exports") / f"{budget.name}-{run.run_id[:12]}"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, folder / WEIGHTS_FILE)
    with torch.no_grad():
        reference = model(test_images)
    files, checks = [WEIGHTS_FILE], {}
    for kind, example in (("uint8", test_images[:2]), ("float", test_images[:2].float() / 255.0)):
        name = f"model{'' if kind == 'uint8' else '_float'}.{fmt}"
        on_step(f"exporting {name} ({kind} input) with {'torch.export' if fmt == 'pt2' else 'torch.onnx'}")
        run_exported = (_export_pt2 if fmt == "pt2" else _export_onnx)(model, example, folder / name)
        inputs = test_images if kind == "uint8" else test_images.float() / 255.0
        logits = _batched(run_exported, inputs)
        diff = float((logits - reference).abs().max())
        correct = int((logits.argmax(dim=1) == test_labels).sum())
        n = len(test_labels)
        # Equal accuracy means the same number of correct images (floats of it may differ in the last bit).
        same = correct == round(verified_test * n)
        checks[kind] = {"file": name, "max_abs_diff": diff, "exported_test_accuracy": correct / n,
                        "verified_test_accuracy": verified_test, "test_images": n,
                        "tolerance": TOLERANCE, "ok": diff <= TOLERANCE and same}
        files.append(name)

    from nas._version import __version__
    from nas.tracking import file_sha256

    model_json = {
        "format": fmt, "files": files, "nas_version": __version__, "spec": final.spec.to_dict(),
        "describe": final.spec.describe(), "input_shape": info["input_shape"], "classes": info["classes"],
        "class_names": info["class_names"], "mean": info["mean"], "std": info["std"],
        "input": "images [N, C, H, W]: uint8 0-255 (model.*) or float32 0-1 (model_float.*); output: logits",
        "params": int(final.verdict["params"]), "macs_per_image": int(final.verdict["macs_per_image"]),
        "dataset": budget.data.dataset, "data_fingerprint": info["data_fingerprint"],
        "budget": budget.name, "verdict": "PASS" if verification.ok else "FAIL",
        "verification": [{"constraint": r.constraint, "limit": r.limit, "measured": r.measured, "ok": r.ok}
                         for r in verification.rows],
        "accuracies": verification.accuracies, "rule": budget.target.rule, "target": budget.target.min,
        "run_id": run.run_id, "search_run_id": parent.run_id if parent else None,
        "weights_sha256": file_sha256(folder / WEIGHTS_FILE), "checks": checks,
    }
    (folder / MODEL_JSON).write_text(json.dumps(model_json, indent=1))
    (folder / "MODEL_CARD.md").write_text(model_card(model_json, budget))
    files += [MODEL_JSON, "MODEL_CARD.md"]
    bad = [k for k, c in checks.items() if not c["ok"]]
    if bad:
        c = checks[bad[0]]
        raise ExportCheckFailed(f"{folder / c['file']}: the export does not reproduce the tracked model: max |logit "
                                f"difference| {c['max_abs_diff']:.2e} (tolerance {TOLERANCE:g}), test accuracy "
                                f"{c['exported_test_accuracy']:.4%} against {c['verified_test_accuracy']:.4%} verified")
    return Exported(folder, files, checks)


def _batched(fn, images, batch: int = 1000):
    import torch

    with torch.no_grad():
        return torch.cat([fn(images[i:i + batch]) for i in range(0, len(images), batch)])


def _dynamic_batch():
    import torch

    return {"images": {0: torch.export.Dim("batch", min=1, max=65536)}}


def _export_pt2(model, example, path: Path):
    import torch

    program = torch.export.export(model, (example,), dynamic_shapes=_dynamic_batch())
    torch.export.save(program, str(path))
    loaded = torch.export.load(str(path)).module()  # check what was written, not what is in memory
    return lambda x: loaded(x)


def _export_onnx(model, example, path: Path):
    import warnings

    import numpy as np
    import onnxruntime
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(path), dynamo=True, dynamic_shapes=_dynamic_batch(),
                          input_names=["images"], output_names=["logits"], verbose=False,
                          external_data=False)  # one self-contained file: these nets are small
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: torch.from_numpy(np.asarray(session.run(None, {name: x.numpy()})[0]))


def model_card(m: dict, budget) -> str:
    """MODEL_CARD.md: what the model is, what it was trained on, how it was judged, its limits."""
    c, h, w = m["input_shape"]
    lines = [f"# {m['budget']}: `{m['describe']}`", "",
             f"A {m['params']:,}-parameter CNN ({m['macs_per_image']:,} MACs per image) for {m['classes']}-class "
             f"image classification, found by `nas search` under budget `{m['budget']}` "
             f"({budget.description or 'no description'}) and exported by nas {m['nas_version']}.", "",
             "## Input and output", "",
             f"- Input: {c} x {h} x {w} images, [N, {c}, {h}, {w}]: uint8 0-255 for `model.{m['format']}`, float32 "
             f"0-1 for `model_float.{m['format']}`. Normalisation ((x - {m['mean']:.4f}) / {m['std']:.4f}) is inside.",
             f"- Output: logits over the classes {', '.join(m['class_names'])}.", "",
             "## Training data", "",
             f"- Dataset `{m['dataset']}`, split as the budget says (train {budget.data.train or 'default'}, "
             f"validation {budget.data.val or 'default'}, test: the dataset's test split); data fingerprint "
             f"`{m['data_fingerprint'][:16]}`.", "",
             f"## Verdict: {m['verdict']}", "",
             "| constraint | limit | measured | result |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['constraint']} | {r['limit']} | {r['measured']} | {'PASS' if r['ok'] else 'FAIL'} |"
              for r in m["verification"]]
    lines += ["", "## Accuracy per seed (re-evaluated from the stored weights)", "",
              "| seed | run | validation | test |", "| --- | --- | ---: | ---: |"]
    lines += [f"| {a['seed']} | `{a['run_id'][:12]}` | {a['val_accuracy']:.2%} | {a['test_accuracy']:.2%} |"
              for a in m["accuracies"]]
    check = m["checks"]["uint8"]
    lines += ["", f"Export check: on all {check['test_images']:,} test images the exported model's logits differ "
                  f"from the tracked model's by at most {check['max_abs_diff']:.1e}, and its test accuracy is "
                  f"{check['exported_test_accuracy']:.2%} (verified: {check['verified_test_accuracy']:.2%}).", "",
              "## Limitations", "",
              f"- Trained and judged only on `{m['dataset']}` images: {c} x {h} x {w}, the dataset's own framing "
              f"and contrast. Images from another domain (other sizes resized to fit, photos, other scripts, "
              f"inverted colours) are out of distribution, and its accuracy there is unknown.",
              "- Validation data chose this architecture and its training options; the test split was used "
              "for nothing but reporting, so the test accuracy is the unbiased estimate.",
              "- Accuracy varies with the training seed; the table above shows how much for this model.", "",
              "## Use", "", "```python", "import torch",
              "program = torch.export.load('model.pt2').module()  # or: nas.load('<this folder>')"
              if m["format"] == "pt2" else
              "import onnxruntime  # session = onnxruntime.InferenceSession('model.onnx')",
              f"logits = program(images_uint8)  # [N, {c}, {h}, {w}]" if m["format"] == "pt2" else
              "logits = session.run(None, {'images': images_uint8})[0]", "```", "",
              f"Runs: winner `{m['run_id']}`, search `{m['search_run_id']}`.", ""]
    return "\n".join(lines)
