"""MODEL_CARD.md of an exported winner: what it is, what it was trained on, how it was judged, its limits."""

from __future__ import annotations


def model_card(m: dict, budget) -> str:
    """MODEL_CARD.md: what the model is, what it was trained on, how it was judged, its limits."""
    c, h, w = m["input_shape"]
    failing = [r for r in m["verification"] if not r["ok"]]
    warning = (["> **FAIL: this model does not meet its budget.** It was exported with `--allow-fail`. Failing: "
                + "; ".join(f"{r['constraint']} ({r['measured']}, limit {r['limit']})" for r in failing) + ".", ""]
               if m["verdict"] == "FAIL" else [])
    lines = [f"# {m['budget']}: `{m['describe']}`", "", *warning,
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
    lines += ["", "## Accuracy per seed (re-evaluated from the stored weights)", ""]
    if all("fp32_val_accuracy" in a for a in m["accuracies"]):  # [target] precision int8: int8 was judged
        lines += ["| seed | run | int8 validation | int8 test | float32 validation | float32 test |",
                  "| --- | --- | ---: | ---: | ---: | ---: |"]
        lines += [f"| {a['seed']} | `{a['run_id'][:12]}` | {a['val_accuracy']:.2%} | {a['test_accuracy']:.2%} | "
                  f"{a['fp32_val_accuracy']:.2%} | {a['fp32_test_accuracy']:.2%} |" for a in m["accuracies"]]
    else:
        lines += ["| seed | run | validation | test |", "| --- | --- | ---: | ---: |"]
        lines += [f"| {a['seed']} | `{a['run_id'][:12]}` | {a['val_accuracy']:.2%} | {a['test_accuracy']:.2%} |"
                  for a in m["accuracies"]]
    check = m["checks"]["uint8"]
    lines += ["", f"Export check: on all {check['test_images']:,} test images the exported model's logits differ "
                  f"from the tracked model's by at most {check['max_abs_diff']:.1e}, and its test accuracy is "
                  f"{check['exported_test_accuracy']:.2%} (verified: {check['verified_test_accuracy']:.2%}).", "",
              *_int8_section(m),
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


def _int8_section(m: dict) -> list[str]:
    """fp32 and int8 side by side, for an export with --int8."""
    if "int8" not in m:
        return []
    fp32, int8 = m["fp32"], m["int8"]
    rows = [("test accuracy", f"{fp32['test_accuracy']:.2%}", f"{int8['test_accuracy']:.2%}"),
            ("validation accuracy", f"{fp32['val_accuracy']:.2%}", f"{int8['val_accuracy']:.2%}"),
            ("weight bytes (all initializers)", f"{fp32['weight_bytes']:,}", f"{int8['weight_bytes']:,}"),
            ("file bytes", f"{fp32['file_bytes']:,}", f"{int8['file_bytes']:,}")]
    verdict = ("within" if int8["ok"] else "**more than**")
    return ["## int8 beside fp32", "",
            f"| | fp32 `{fp32['file']}` | int8 `{int8['file']}` |", "| --- | ---: | ---: |",
            *[f"| {name} | {a} | {b} |" for name, a, b in rows], "",
            f"`{int8['file']}` takes the same input as `{fp32['file']}`. It is a static post-training quantization "
            f"(onnxruntime, QDQ, int8 weights per output channel, int8 activations calibrated on "
            f"{int8['calibration_images']} training images); its test accuracy is {verdict} the tolerance of "
            f"{int8['max_accuracy_drop'] * 100:.1f} point below fp32.", ""]
