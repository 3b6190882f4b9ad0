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

from nas.constraints import module_to_onnx
from nas.deploy._load import MODEL_JSON, WEIGHTS_FILE
from nas.deploy._quantize import INT8_FILE, check_int8, int8_export
from nas.errors import ExportCheckFailed, UsageError, VerdictFailed
from nas.model import preprocessed
from nas.train import CALIBRATION_IMAGES, require_quantization

FORMATS = ("pt2", "onnx")
TOLERANCE = 1e-4
INSTALL_ONNX = "pip install 'nas[export]'  (onnx, onnxscript, onnxruntime)"


@dataclass
class Exported:
    folder: Path
    files: list[str]
    checks: dict  # per input kind: max_abs_diff, exported_test_accuracy, verified_test_accuracy
    verdict: str = "PASS"  # "FAIL" only for an export with allow_fail
    quantized: dict | None = None  # with --int8: {"fp32": figures, "int8": figures} (nas/deploy/_quantize.py)


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"ONNX export needs {exc.name}: {INSTALL_ONNX}") from None


def verified_for_export(tracker, run_id: str, allow_fail: bool, on_step=lambda message: None):
    """`verify` the run; a winner that fails its budget is refused (VerdictFailed, exit 1) unless
    `allow_fail`, and then the step it is exported anyway says FAIL."""
    from nas.deploy._verify import verify

    on_step(f"verifying run {run_id} (and its seed runs) from their stored artifacts")
    verified = verify(tracker, run_id)
    if not verified.ok:
        failing = "; ".join(f"{r.constraint}: {r.measured} (limit {r.limit})" for r in verified.failing)
        if not allow_fail:
            raise VerdictFailed(f"run {verified.run_id} fails its budget, so nothing was exported: {failing}. "
                                f"`nas export {run_id} --allow-fail` exports it anyway, marked FAIL")
        on_step(f"FAIL: run {verified.run_id} fails its budget ({failing}); exporting it as asked (--allow-fail)")
    return verified


def export(run_id: str, fmt: str = "pt2", out_dir: Path | None = None, tracking_uri: str | None = None,
           on_step=lambda message: None, allow_fail: bool = False, int8: bool = False) -> Exported:
    """Verify the run, write the export folder, check the artifact against the tracked model.

    A winner whose verdict fails is not exported (VerdictFailed, exit 1) unless `allow_fail`; then
    the folder's model.json and model card say FAIL at the top. `int8` (ONNX only) adds
    model_int8.onnx, measured beside fp32 (see nas/deploy/_quantize.py)."""

    from nas.report import model_card
    from nas.tracking import Tracker, find_store, records

    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if int8 and fmt != "onnx":
        raise UsageError(f"--int8 quantizes the ONNX model, and --format is {fmt!r}: add --format onnx")
    if fmt == "onnx":
        _require_onnx()
    if int8:
        require_quantization()
    verified = verified_for_export(Tracker(find_store(tracking_uri)), run_id, allow_fail, on_step)
    budget, run, net, dataset = verified.budget, verified.run, verified.model, verified.dataset
    final = records.load_final(run)
    info = run.json_artifact(records.MODEL_INFO)
    weights = final.weights_path()
    model = preprocessed(net, info["mean"], info["std"])

    folder = Path(out_dir) if out_dir else Path("exports") / f"{budget.name}-{run.run_id[:12]}"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, folder / WEIGHTS_FILE)
    files, checks = _export_and_check(model, fmt, folder, dataset, verified.fp32_test_accuracy, on_step)
    quantized = None
    int8 = int8 or (fmt == "onnx" and budget.limits.precision == "int8")  # the model its target judged
    if int8:
        on_step(f"quantizing model.onnx to {INT8_FILE} (static int8, calibrated on {CALIBRATION_IMAGES} training "
                f"images) and measuring both with onnxruntime")
        quantized = int8_export(folder, dataset)
        files.append(INT8_FILE)

    model_json = {**_model_json(fmt, files, checks, verified, final, info, folder), **(quantized or {})}
    (folder / MODEL_JSON).write_text(json.dumps(model_json, indent=1))
    (folder / "MODEL_CARD.md").write_text(model_card(model_json, budget))
    files += [MODEL_JSON, "MODEL_CARD.md"]
    bad = [k for k, c in checks.items() if not c["ok"]]
    if bad:
        c = checks[bad[0]]
        raise ExportCheckFailed(f"{folder / c['file']}: the export does not reproduce the tracked model: max |logit "
                                f"difference| {c['max_abs_diff']:.2e} (tolerance {TOLERANCE:g}), test accuracy "
                                f"{c['exported_test_accuracy']:.4%} against {c['verified_test_accuracy']:.4%} verified")
    if quantized:
        judged = verified.test_accuracy if budget.limits.precision == "int8" else None
        check_int8(folder, quantized, judged, len(dataset.test))
    return Exported(folder, files, checks, model_json["verdict"], quantized)


def _export_and_check(model, fmt: str, folder: Path, dataset, verified_test: float, on_step) -> tuple[list, dict]:
    """Write the uint8- and float-input artifacts and check each against the tracked model on the
    whole test split: (files written, per input kind the check's figures)."""
    import torch

    test_images, test_labels = dataset.test.images, dataset.test.labels
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
    return files, checks


def _model_json(fmt: str, files: list, checks: dict, verified, final, info: dict, folder: Path) -> dict:
    """model.json: what the folder holds, how to feed it, and the evidence it was judged by."""
    budget, run, parent = verified.budget, verified.run, verified.parent
    from nas._version import __version__
    from nas.tracking import file_sha256

    return {
        "format": fmt, "files": files, "nas_version": __version__, "spec": final.spec.to_dict(),
        "describe": final.spec.describe(), "input_shape": info["input_shape"], "classes": info["classes"],
        "class_names": info["class_names"], "mean": info["mean"], "std": info["std"],
        "input": "images [N, C, H, W]: uint8 0-255 (model.*) or float32 0-1 (model_float.*); output: logits",
        "params": int(final.verdict["params"]), "macs_per_image": int(final.verdict["macs_per_image"]),
        "dataset": budget.data.dataset, "data_fingerprint": info["data_fingerprint"],
        "budget": budget.name, "verdict": "PASS" if verified.ok else "FAIL",
        "verification": [{"constraint": r.constraint, "limit": r.limit, "measured": r.measured, "ok": r.ok}
                         for r in verified.rows],
        "accuracies": verified.accuracies, "rule": budget.target.rule, "target": budget.target.min,
        "run_id": run.run_id, "search_run_id": parent.run_id if parent else None,
        "weights_sha256": file_sha256(folder / WEIGHTS_FILE), "checks": checks,
    }


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
    import numpy as np
    import onnxruntime
    import torch

    module_to_onnx(model, tuple(example.shape[1:]), path, example)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: torch.from_numpy(np.asarray(session.run(None, {name: x.numpy()})[0]))


