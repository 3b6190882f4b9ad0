"""`nas verify`, `nas export` and `nas predict`: the winner outside the search."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from nas.cli._common import add_tracking, console, open_tracker
from nas.errors import UsageError


def cmd_verify(args) -> int:
    from nas.deploy import verify

    result = verify(open_tracker(args), args.run_id, args.budget)
    table = Table(title=f"verification of run {result.run_id} against {result.budget.path}", header_style="bold")
    for col in ("constraint", "limit", "measured", "counted by", "result"):
        table.add_column(col)
    for r in result.rows:
        table.add_row(r.constraint, r.limit, r.measured, r.counted_by, "[green]PASS[/]" if r.ok else "[red]FAIL[/]")
    console.print(table)
    console.print("every claim holds" if result.ok else "[red]at least one claim fails[/]")
    return result.exit_code


def cmd_export(args) -> int:
    from nas.deploy import export

    if args.format == "mlflow":
        return _export_mlflow(args)
    result = export(args.run_id, args.format, Path(args.out) if args.out else None, args.tracking_uri,
                    on_step=lambda m: console.print(m, markup=False), allow_fail=args.allow_fail, int8=args.int8)
    for kind, c in result.checks.items():
        console.print(f"check ({kind} input, {c['test_images']:,} test images): max |logit difference| "
                      f"{c['max_abs_diff']:.2e} (tolerance {c['tolerance']:g}); test accuracy "
                      f"{c['exported_test_accuracy']:.4%}, verified {c['verified_test_accuracy']:.4%}", markup=False)
    if result.quantized:
        fp32, int8 = result.quantized["fp32"], result.quantized["int8"]
        console.print(f"int8 ({int8['calibration_images']} calibration images): test accuracy "
                      f"{int8['test_accuracy']:.2%} (fp32 {fp32['test_accuracy']:.2%}, tolerance "
                      f"{int8['max_accuracy_drop'] * 100:.1f} point), validation {int8['val_accuracy']:.2%} "
                      f"(fp32 {fp32['val_accuracy']:.2%}); weights {int8['weight_bytes']:,} bytes "
                      f"(fp32 {fp32['weight_bytes']:,}), file {int8['file_bytes']:,} bytes "
                      f"(fp32 {fp32['file_bytes']:,})", markup=False)
    console.print(f"exported to {result.folder}: {', '.join(result.files)}", markup=False)
    if result.verdict != "PASS":
        console.print(f"[red]FAIL[/]: the exported model does not meet its budget (see {result.folder}/MODEL_CARD.md)")
    return 0


def _export_mlflow(args) -> int:
    from nas.deploy import log_winner, verified_for_export

    if args.int8:
        raise UsageError("--int8 quantizes the ONNX model: use it with --format onnx, not mlflow")
    if args.out:
        raise UsageError(f"--out {args.out!r} is for the folder formats (pt2, onnx); --format mlflow logs the model "
                         f"into the tracking store and registers it")
    tracker = open_tracker(args)
    verified = verified_for_export(tracker, args.run_id, args.allow_fail, lambda m: console.print(m, markup=False))
    console.print("logging the winner as an MLflow Model and registering it", markup=False)
    model_uri, name, version = log_winner(tracker, args.run_id, verified)
    console.print(f"logged {model_uri} into run {verified.run_id}; registered as {name} version {version}"
                  + ("" if verified.ok else " (FAIL: tagged nas_verdict=FAIL)"), markup=False)
    console.print(f"serve it: MLFLOW_TRACKING_URI={tracker.uri} mlflow models serve -m models:/{name}/{version} "
                  f"--env-manager local", markup=False)
    return 0


def cmd_predict(args) -> int:
    from nas.deploy import load, predict

    model = load(args.model, args.tracking_uri)
    for row in predict(model, args.images):
        console.print(f"{row['file']}: {row['name']} ({row['probability']:.1%})", markup=False)
    return 0


def register(sub) -> None:
    p = sub.add_parser("verify", help="re-check every constraint of a winner from its stored artifacts")
    p.add_argument("run_id", help="a search's run id (its winner is checked) or a final run's id")
    p.add_argument("--budget", default=None, help="verify against this budget file instead of the stored one")
    add_tracking(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("export", help="a verified winner as a self-contained folder (torch.export or ONNX) "
                                      "or a registered MLflow Model")
    p.add_argument("run_id", help="a search's run id (its winner is exported) or a final run's id")
    p.add_argument("--format", default="pt2", choices=["pt2", "onnx", "mlflow"],
                   help="pt2: torch.export (default); onnx: needs pip install 'nas[export]'; mlflow: an MLflow "
                        "Model logged into the winner's run and registered as nas-<budget name>")
    p.add_argument("--out", default=None, help="folder to write (default exports/<budget>-<run id>)")
    p.add_argument("--int8", action="store_true",
                   help="with --format onnx: also model_int8.onnx, static int8 quantization measured beside fp32")
    p.add_argument("--allow-fail", action="store_true",
                   help="export a winner that fails its budget anyway; model.json and the card say FAIL "
                        "(mlflow: the model version is tagged nas_verdict=FAIL)")
    add_tracking(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("predict", help="classify image files with a run's winner or an exported folder")
    p.add_argument("model", help="a run id, or a folder written by `nas export`")
    p.add_argument("images", nargs="+", help="PNG/JPEG/BMP files")
    add_tracking(p)
    p.set_defaults(func=cmd_predict)
