"""Budget files: shipped ones load; each kind of mistake is a ConfigError naming file and key."""

import re
import time

import pytest
from conftest import BUDGETS, SHIPPED_BUDGETS

from nas.cli import main
from nas.config import Schedule, load_budget
from nas.errors import ConfigError
from nas.model import load_baseline


@pytest.mark.parametrize("path", SHIPPED_BUDGETS, ids=lambda p: p.name)
def test_shipped_budgets_load(path):
    budget = load_budget(path)
    assert budget.name == path.stem
    assert budget.train.epochs <= budget.limits.max_epochs
    assert 0 < budget.target.min <= 1


def test_headline_budget_matches_seed_003_constraints():
    b = load_budget(BUDGETS / "mnist_20k.toml")
    assert (b.data.dataset, b.data.train, b.data.val) == ("mnist", 50000, 10000)
    assert (b.limits.max_params, b.limits.max_epochs, b.target.min) == (20000, 20, 0.994)


def test_the_smallest_net_budget_keeps_the_schedule_seed_003_logged():
    # Seed 003's log (epochs numbered from 1): 0.003 in 1-4, ~0.001 from 5, ~0.0003 from 12,
    # ~0.0001 from 18. epoch_lrs()[i] is the rate epoch i + 1 trains at. The headline budget
    # trains with SGD and one cycle instead; mnist_20k_smallest keeps the recipe it was searched with.
    schedule = load_budget(BUDGETS / "mnist_20k_smallest.toml").train.schedule
    assert schedule.phase_lr == (3e-3, 1e-3, 3e-4, 1e-4)
    lrs = schedule.epoch_lrs()
    drops_1_based = [i + 1 for i in range(1, len(lrs)) if lrs[i] < lrs[i - 1]]
    assert drops_1_based == [5, 12, 18]
    assert len(lrs) == 20


def test_phase_schedule_describes_1_based_epoch_ranges():
    s = Schedule.phases([0, 4, 11, 17], [3e-3, 1e-3, 3e-4, 1e-4], 20)
    assert s.describe() == "phases 0.003 (epochs 1-4) -> 0.001 (epochs 5-11) -> 0.0003 (epochs 12-17) -> 0.0001 (epochs 18-20)"
    assert Schedule.phases([0, 1], [1e-2, 1e-3], 3).describe() == "phases 0.01 (epoch 1) -> 0.001 (epochs 2-3)"


def test_frontier_budgets():
    b = load_budget(BUDGETS / "mnist_8k.toml")
    assert (b.limits.max_params, b.limits.max_epochs, b.target.min, b.target.seeds) == (8000, 15, 0.9945, 3)
    b = load_budget(BUDGETS / "mnist_4k.toml")
    assert (b.limits.max_params, b.limits.max_epochs, b.target.min, b.target.seeds) == (4000, 15, 0.994, 3)
    assert b.space.conv == ("standard", "separable") and b.space.residual == (False, True)


# (edit applied to the smoke budget, key named in the error, words the message must contain)
MISTAKES = [
    (lambda t: "bogus = 1\n" + t, "", "unknown key bogus; valid keys here: budget, data, description, name, search"),
    (lambda t: t + "\nbogus = 1\n", "search", "unknown key bogus; valid keys here: baseline, confirm_starts, finalists"),
    (lambda t: t.replace("[space]", "[space]\nwidth = [3]"), "space", "unknown key width; valid keys here: activation, channels"),
    (lambda t: t.replace('dataset = "digits"', 'dataset = "cifar"'), "data.dataset", "'cifar' is not one of"),
    (lambda t: t.replace('metric = "val_accuracy"', 'metric = "f1"'), "target.metric", "'f1' is not one of"),
    (lambda t: t.replace("min = 0.85", "min = 1.5"), "target.min", "above the maximum 1"),
    (lambda t: t.replace("max_params = 3000", 'max_params = "3k"'), "budget.max_params", "must be an integer"),
    (lambda t: t.replace("max_params = 3000", "max_params = 0"), "budget.max_params", "must be >= 1"),
    (lambda t: t.replace("channels = [4, 8, 16, 24]", "channels = []"), "space.channels", "non-empty list"),
    (lambda t: t.replace("stages = [1, 2]", "stages = { min = 3, max = 1 }"), "space.stages", "min 3 > max 1"),
    (lambda t: t.replace('norm = ["batch", "none"]', 'norm = ["layer"]'), "space.norm", "'layer' is not one of"),
    (lambda t: t.replace("kernel = [3]", "kernel = [4]"), "space.kernel", "must be odd"),
    (lambda t: t.replace("epochs = 6\noptimizer", "epochs = 9\noptimizer"), "train.epochs", "exceeds budget.max_epochs = 6"),
    (lambda t: t.replace("at_epoch = [0, 4]", "at_epoch = [0, 7]"), "train.lr_phases.at_epoch", "longer than train.epochs"),
    (lambda t: t.replace("lr = [1e-2, 3e-3]", "lr = [1e-2]"), "train.lr_phases.lr", "one lr per phase"),
    (lambda t: t.replace("lr_phases = {", "lr = { min = 1e-3, max = 1e-2 }\nlr_phases = {"), "train.lr",
     "takes its rates from lr_phases"),
    (lambda t: t.replace('optimizer = ["adam"]', 'optimizer = ["lion"]'), "train.optimizer", "'lion' is not one of"),
    (lambda t: t.replace('sampler = "tpe"', 'sampler = "grid"'), "search.sampler", "'grid' is not one of"),
    (lambda t: t.replace("screen_epochs = 2", "screen_epochs = 9"), "search.screen_epochs", "exceeds train.epochs"),
    (lambda t: t.replace("[search]", "[search]\nmin_params = 3000"), "search.min_params",
     "3,000 is not below budget.max_params = 3,000, so no candidate could train; lower it"),
    (lambda t: t.replace("[target]", "[target"), "", "not valid TOML"),
    (lambda t: t.replace("[budget]", "[limits]"), "", "unknown key limits; valid keys here: budget, data"),
    # mistyped numbers: an upper bound, named in the message, instead of a hang or a huge model
    (lambda t: t.replace("kernel = [3]", "kernel = [99999999999999999999]"), "space.kernel",
     "option 99999999999999999999 must be <= 8 (the smaller side of the 8x8 digits input)"),
    (lambda t: t.replace("kernel = [3]", "kernel = [9]"), "space.kernel", "option 9 must be <= 8"),
    (lambda t: t.replace("stages = [1, 2]", "stages = 99999999999999999999"), "space.stages",
     "option 99999999999999999999 must be <= 16"),
    (lambda t: t.replace("stages = [1, 2]", "stages = [1, 100000]"), "space.stages", "option 100000 must be <= 16"),
    (lambda t: t.replace("stages = [1, 2]", "stages = { min = 1, max = 99999999999999999999 }"), "space.stages",
     "max 99999999999999999999 must be <= 16"),
    (lambda t: t.replace("convs_per_stage = [1, 2]", "convs_per_stage = [17]"), "space.convs_per_stage",
     "option 17 must be <= 16"),
    (lambda t: t.replace("channels = [4, 8, 16, 24]", "channels = [4, 40000]"), "space.channels",
     "option 40000 must be <= 4096"),
    (lambda t: t.replace("channels = [4, 8, 16, 24]", "channels = { min = 1, max = 99999999999999999999 }"),
     "space.channels", "max 99999999999999999999 must be <= 4096"),
    (lambda t: t.replace("[space]", "[space]\nhead_hidden = [65537]"), "space.head_hidden",
     "option 65537 must be <= 65536"),
    (lambda t: t.replace("batch_size = [32]", "batch_size = [32, 3200]"), "train.batch_size",
     "option 3200 must be <= 1000 (data.train = 1000, the training set size)"),
    (lambda t: t.replace("batch_size = [32]", "batch_size = [99999999999999999999]").replace("train = 1000\n", ""),
     "train.batch_size", "option 99999999999999999999 must be <= 65536"),
    (lambda t: t.replace("at_epoch = [0, 4]", "at_epoch = { min = 0, max = 99999999999 }"),
     "train.lr_phases.at_epoch", "spans 100,000,000,000 options; at most 10,000"),
    (lambda t: t.replace("max_macs = 150_000", "max_macs = 150_000\nrequires = []"), "budget.requires",
     "is an empty list []; omit the key for no required feature"),
    # float ranges: the key is named with what is wrong and how to fix it
    (lambda t: t.replace("dropout = [0.0]", "dropout = { min = 0.3, max = 0.1 }"), "space.dropout",
     "min 0.3 > max 0.1; swap them"),
    (lambda t: t.replace("dropout = [0.0]", "dropout = { min = 0.0, max = 1.0 }"), "space.dropout",
     "max 1 is above the largest allowed value 0.95"),
    (lambda t: t.replace("batch_size = [32]", "batch_size = [32]\nweight_decay = { min = 0, max = 1e-3, log = true }"),
     "train.weight_decay", "log = true needs min > 0"),
    (lambda t: t.replace("batch_size = [32]", "batch_size = [32]\nlr_scale = { min = -1, max = 2 }"),
     "train.lr_scale", "min -1 is below the smallest allowed value 1e-06"),
    (lambda t: t.replace("batch_size = [32]", "batch_size = [32]\nlabel_smoothing = { min = 0, max = 0.7 }"),
     "train.label_smoothing", "max 0.7 is above the largest allowed value 0.5"),
    (lambda t: t.replace("dropout = [0.0]", "dropout = { min = 0.0, max = 0.2, step = 0.1 }"), "space.dropout",
     "unknown key step; valid keys here: log, max, min"),
    (lambda t: t.replace("dropout = [0.0]", 'dropout = { min = 0.0, max = "0.2" }'), "space.dropout.max",
     "must be a finite number"),
    (lambda t: t.replace('schedule = "phases"\nlr_phases = { at_epoch = [0, 4], lr = [1e-2, 3e-3] }',
                         'schedule = "cosine"\nlr = { min = 0.1, max = 0.01, log = true }'), "train.lr", "min 0.1 > max 0.01"),
    # the newer blocks
    (lambda t: t.replace("[space]", '[space]\nconv = ["grouped"]'), "space.conv", "'grouped' is not one of standard"),
    (lambda t: t.replace("[space]", '[space]\nresidual = ["yes"]'), "space.residual", "must be true or false"),
    (lambda t: t.replace("[space]", "[space]\nhead_hidden = [[], [64, 0]]"), "space.head_hidden",
     "each hidden width must be an integer from 1 to 65536, got 0"),
    # search settings that Optuna has only for some samplers and pruners
    (lambda t: t.replace('sampler = "tpe"', 'sampler = "random"\nmultivariate = true'), "search.multivariate",
     'applies to sampler = "tpe" only'),
    (lambda t: t.replace('sampler = "tpe"', 'sampler = "tpe"\npruner = "asha"'), "search.pruner",
     "'asha' is not one of median, hyperband, none"),
    (lambda t: t.replace('sampler = "tpe"', 'sampler = "tpe"\nreduction_factor = 2'), "search.reduction_factor",
     'applies to pruner = "hyperband" only'),
    (lambda t: t.replace('sampler = "tpe"', 'sampler = "tpe"\npruner = "hyperband"\nmin_epochs = 3'),
     "search.min_epochs", "exceeds search.screen_epochs = 2"),
    (lambda t: t.replace('sampler = "tpe"', 'sampler = "tpe"\nobjective = "macs"'), "search.objective",
     "'macs' is not one of accuracy, params"),
    (lambda t: t.replace('sampler = "tpe"', 'sampler = "tpe"\nconfirm_starts = true'),
     "search.confirm_starts", "applies to start_from nets, and there are none; list them in start_from"),
    (lambda t: t.replace('sampler = "tpe"', 'sampler = "tpe"\nreserve_deadline_minutes = 45'),
     "search.reserve_deadline_minutes", "applies to reserves only; set reserves >= 1 or remove it"),
    (lambda t: t.replace('sampler = "tpe"', 'sampler = "tpe"\nreserves = 1\nreserve_deadline_minutes = -5'),
     "search.reserve_deadline_minutes", "-5 is below the minimum 0"),
    (lambda t: t.replace('sampler = "tpe"', 'sampler = "tpe"\npruner_warmup_epochs = 1'),
     "search.pruner_warmup_epochs", "1 prunes exactly as 0 does"),
    # device limits and the precision their bytes count at
    (lambda t: t.replace("max_macs = 150_000", "max_macs = 150_000\nmax_peak_activation_bytes = 0"),
     "budget.max_peak_activation_bytes", "must be >= 1, got 0"),
    (lambda t: t.replace("max_macs = 150_000", "max_macs = 150_000\nmax_peak_activation_bytes = 2500.5"),
     "budget.max_peak_activation_bytes", "must be an integer, got 2500.5"),
    (lambda t: t.replace("max_macs = 150_000", "max_macs = 150_000\nmax_model_bytes = -4500"),
     "budget.max_model_bytes", "must be >= 1, got -4500"),
    (lambda t: t.replace("min = 0.85", 'min = 0.85\nprecision = "INT8"'), "target.precision",
     "'INT8' is not one of float32, int8"),
]


@pytest.mark.parametrize("edit,key,words", MISTAKES, ids=[m[1] or m[2] for m in MISTAKES])
def test_each_mistake_names_file_key_and_value(edit, key, words, smoke_budget_text, write_budget):
    text = edit(smoke_budget_text)
    assert text != smoke_budget_text, "the edit must change the file"
    path = write_budget(text)
    with pytest.raises(ConfigError) as info:
        load_budget(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert f": {key}: " in message or not key
    assert words in message


def test_cli_prints_one_line_and_exits_2_for_a_bad_budget(smoke_budget_text, write_budget, capsys, tmp_path):
    path = write_budget(smoke_budget_text.replace("max_params = 3000", "max_params = -5"))
    assert main(["space", str(path), "--samples", "10"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert re.search(r"budget.max_params: must be >= 1, got -5", err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["budget.toml"], "nothing is written for a bad budget"


DEVICE_MISTAKES = [("max_peak_activation_bytes = -2500", "budget.max_peak_activation_bytes: must be >= 1, got -2500"),
                   ("max_peak_activation_bytes = 0", "budget.max_peak_activation_bytes: must be >= 1, got 0"),
                   ('max_peak_activation_bytes = "2.5kB"',
                    "budget.max_peak_activation_bytes: must be an integer, got '2.5kB'"),
                   ("max_peak_activation_bytes = 2500.0",
                    "budget.max_peak_activation_bytes: must be an integer, got 2500.0"),
                   ("max_model_bytes = 0", "budget.max_model_bytes: must be >= 1, got 0"),
                   ("max_model_bytes = -1", "budget.max_model_bytes: must be >= 1, got -1"),
                   ("max_model_bytes = 4.5e3", "budget.max_model_bytes: must be an integer, got 4500.0"),
                   ('[target]\nprecision = "INT8"', "target.precision: 'INT8' is not one of float32, int8"),
                   ('[target]\nprecision = "int4"', "target.precision: 'int4' is not one of float32, int8")]


@pytest.mark.parametrize("line,message", DEVICE_MISTAKES, ids=[m[0] for m in DEVICE_MISTAKES])
def test_a_bad_device_limit_or_precision_exits_2_naming_the_key(line, message, smoke_budget_text, write_budget,
                                                                 capsys):
    if line.startswith("[target]"):
        text = smoke_budget_text.replace("[target]", line)
    else:
        text = smoke_budget_text.replace("[budget]", f"[budget]\n{line}")
    path = write_budget(text)
    assert main(["space", str(path), "--samples", "10"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"nas: error: {path}: {message}"


def test_device_limits_are_optional_and_precision_defaults_to_float32(smoke_budget_text, write_budget):
    limits = load_budget(write_budget(smoke_budget_text)).limits
    assert (limits.max_peak_activation_bytes, limits.max_model_bytes, limits.precision) == (None, None, "float32")
    text = smoke_budget_text.replace("[budget]", "[budget]\nmax_peak_activation_bytes = 2_500\nmax_model_bytes = 4_500")
    limits = load_budget(write_budget(text.replace("[target]", '[target]\nprecision = "int8"'))).limits
    assert (limits.max_peak_activation_bytes, limits.max_model_bytes, limits.precision) == (2500, 4500, "int8")


def test_cli_debug_shows_traceback(smoke_budget_text, write_budget, capsys):
    path = write_budget(smoke_budget_text + "\nbogus = 1\n")
    assert main(["--debug", "space", str(path)]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_cli_rejects_a_mistyped_stage_count_at_once(smoke_budget_text, write_budget, capsys):
    # stages = 100000 used to make `nas space` build 100,000-stage candidates until it was killed
    path = write_budget(smoke_budget_text.replace("stages = [1, 2]", "stages = 100000"))
    started = time.perf_counter()
    assert main(["space", str(path), "--samples", "10"]) == 2
    assert time.perf_counter() - started < 5
    err = capsys.readouterr().err.strip()
    assert err == f"nas: error: {path}: space.stages: option 100000 must be <= 16"


def test_requires_lists_features_or_is_absent(smoke_budget_text, write_budget):
    assert load_budget(write_budget(smoke_budget_text)).limits.requires == ()
    with_gap = smoke_budget_text.replace("max_macs = 150_000", 'max_macs = 150_000\nrequires = ["gap"]')
    assert load_budget(write_budget(with_gap)).limits.requires == ("gap",)


def test_grammar_bounds_follow_the_dataset(smoke_budget_text, write_budget):
    mnist = smoke_budget_text.replace('dataset = "digits"', 'dataset = "mnist"')
    assert load_budget(write_budget(mnist.replace("kernel = [3]", "kernel = [27]"))).space.kernel == (27,)
    with pytest.raises(ConfigError, match="option 29 must be <= 28 .the smaller side of the 28x28 mnist input"):
        load_budget(write_budget(mnist.replace("kernel = [3]", "kernel = [29]")))
    widest = smoke_budget_text.replace("channels = [4, 8, 16, 24]", "channels = { min = 1, max = 4096 }")
    assert len(load_budget(write_budget(widest)).space.channels) == 4096


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_budget(tmp_path / "absent.toml")


def test_float_ranges_load_as_ranges_and_lists_still_work(smoke_budget_text, write_budget):
    from nas.config import FloatRange

    text = (smoke_budget_text.replace("dropout = [0.0]", "dropout = { min = 0.0, max = 0.1 }")
            .replace('schedule = "phases"\nlr_phases = { at_epoch = [0, 4], lr = [1e-2, 3e-3] }',
                     'schedule = "onecycle"\nlr = { min = 1e-3, max = 1e-1, log = true }\n'
                     'weight_decay = [0.0, 1e-4]\nlabel_smoothing = 0.1'))
    budget = load_budget(write_budget(text))
    assert budget.space.dropout == FloatRange(0.0, 0.1, log=False)
    assert budget.train.lr == FloatRange(1e-3, 1e-1, log=True)
    assert budget.train.schedule.lr == pytest.approx(1e-2)  # the geometric middle until a candidate draws one
    assert budget.train.weight_decay == (0.0, 1e-4) and budget.train.label_smoothing == (0.1,)
def test_baseline_is_read_relative_to_the_budget(tmp_path, smoke_budget_text, write_budget):
    import shutil

    (tmp_path / "archs").mkdir()
    shutil.copy(BUDGETS / "archs" / "digits_small.json", tmp_path / "archs")
    text = smoke_budget_text.replace("[search]", '[search]\nbaseline = "archs/digits_small.json"')
    budget = load_budget(write_budget(text))
    assert budget.search.baseline == "archs/digits_small.json"
    assert load_budget(BUDGETS / "smoke.toml").search.baseline is None


@pytest.mark.parametrize("value,words", [
    ('"archs/missing.json"', "search.baseline: cannot read"),
    ('"broken.json"', "search.baseline: "),
    ('""', "search.baseline: is empty"),
    ("3", "search.baseline: must be a string, got 3"),
])
def test_bad_baseline_fails_naming_the_key(tmp_path, smoke_budget_text, write_budget, value, words, capsys):
    (tmp_path / "broken.json").write_text('{"stages": []}')
    path = write_budget(smoke_budget_text.replace("[search]", f"[search]\nbaseline = {value}"))
    with pytest.raises(ConfigError, match=re.escape(words)):
        load_baseline(load_budget(path))
    assert main(["space", str(path), "--samples", "10"]) == 2
    assert words in capsys.readouterr().err


# (edit applied to the smoke budget, the whole message after the file name): a typo is named with
# its close match before any key it leaves missing, in every table
TYPOS = [
    (lambda t: t.replace("max_params = 3000", "max_param = 3000"),
     "budget: unknown key max_param; did you mean max_params?"),
    (lambda t: t.replace('name = "smoke"', 'nmae = "smoke"'), "unknown key nmae; did you mean name?"),
    (lambda t: t.replace("[target]", "[targte]"), "unknown key targte; did you mean target?"),
    (lambda t: t.replace('dataset = "digits"', 'datset = "digits"'), "data: unknown key datset; did you mean dataset?"),
    (lambda t: t.replace("min = 0.85", "mni = 0.85"), "target: unknown key mni; did you mean min?"),
    (lambda t: t.replace("max_epochs = 6", "max_epoch = 6"), "budget: unknown key max_epoch; did you mean max_epochs?"),
    (lambda t: t.replace("convs_per_stage", "conv_per_stage"),
     "space: unknown key conv_per_stage; did you mean convs_per_stage?"),
    (lambda t: t.replace("batch_size = [32]", "batchsize = [32]"),
     "train: unknown key batchsize; did you mean batch_size?"),
    (lambda t: t.replace("screen_epochs = 2", "screen_epoch = 2"),
     "search: unknown key screen_epoch; did you mean screen_epochs?"),
    (lambda t: t.replace("at_epoch = [0, 4]", "at_epochs = [0, 4]"),
     "train.lr_phases: unknown key at_epochs; did you mean at_epoch?"),
    (lambda t: t.replace("stages = [1, 2]", "stages = { min = 1, mx = 2 }"),
     "space.stages: unknown key mx; did you mean max?"),
    (lambda t: t.replace("dropout = [0.0]", "dropout = { min = 0.0, max = 0.2, lgo = true }"),
     "space.dropout: unknown key lgo; did you mean log?"),
    # a known key that the chosen dataset does not read
    (lambda t: t.replace("val = 400", 'val = 400\nlayout = "NHW"'),
     "data.layout: does not apply here; the keys used here: dataset, seed, train, val"),
]


@pytest.mark.parametrize("edit,message", TYPOS, ids=[m[1].split(";")[0] for m in TYPOS])
def test_a_typo_names_its_close_match_before_any_missing_key(edit, message, smoke_budget_text, write_budget):
    text = edit(smoke_budget_text)
    assert text != smoke_budget_text, "the edit must change the file"
    path = write_budget(text)
    with pytest.raises(ConfigError) as info:
        load_budget(path)
    assert str(info.value) == f"{path}: {message}"


def test_the_cli_names_the_typo_in_one_line(smoke_budget_text, write_budget, capsys):
    path = write_budget(smoke_budget_text.replace("max_params = 3000", "max_param = 5"))
    assert main(["space", str(path)]) == 2
    expected = f"nas: error: {path}: budget: unknown key max_param; did you mean max_params?"
    assert capsys.readouterr().err.strip() == expected


@pytest.mark.parametrize("epochs, screen_epochs", [(1, 1), (2, 1), (3, 1), (4, 2), (6, 3), (20, 3)])
def test_screening_defaults_to_at_most_half_the_training_run(epochs, screen_epochs, smoke_budget_text, write_budget):
    # a budget of 2 epochs without screen_epochs failed on an unstated default of 3
    text = (smoke_budget_text.replace("max_epochs = 6", f"max_epochs = {epochs}")
            .replace("epochs = 6\noptimizer", f"epochs = {epochs}\noptimizer")
            .replace("at_epoch = [0, 4], lr = [1e-2, 3e-3]", "at_epoch = [0], lr = [1e-2]")
            .replace("screen_epochs = 2\n", ""))
    budget = load_budget(write_budget(text))
    assert (budget.train.epochs, budget.search.screen_epochs) == (epochs, screen_epochs)
    with pytest.raises(ConfigError, match=f"search.screen_epochs: {epochs + 1} exceeds train.epochs = {epochs}"):
        load_budget(write_budget(text.replace("[search]", f"[search]\nscreen_epochs = {epochs + 1}")))


@pytest.mark.parametrize("warmup_epochs,pruned_after_epoch_1", [(0, True), (1, True), (2, False)])
def test_a_warmup_of_one_epoch_prunes_after_epoch_1_as_none_does(warmup_epochs, pruned_after_epoch_1):
    """Why `pruner_warmup_epochs = 1` is refused: screenings report epochs from 1, and Optuna's
    MedianPruner judges every step from n_warmup_steps on, so 1 protects nothing that 0 does not."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=warmup_epochs))
    done = study.ask()
    done.report(0.9, 1)
    study.tell(done, 0.9)
    weak = study.ask()
    weak.report(0.1, 1)
    assert bool(weak.should_prune()) == pruned_after_epoch_1
