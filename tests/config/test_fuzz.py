"""Hostile budget and study files: thousands of generated documents, always a ConfigError or a
valid object, never a traceback."""

import copy
import tomllib

from conftest import BUDGETS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas.config import BUILT_IN, Budget, load_budget, parse_budget
from nas.constraints import survey
from nas.errors import ConfigError
from nas.study import Study, load_study

SMOKE = tomllib.loads((BUDGETS / "smoke.toml").read_text())

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**9), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["adam", "batch", "max", "tpe", "digits", "same"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=8)


def paths(doc, prefix=()):
    for k, v in doc.items():
        yield prefix + (k,)
        if isinstance(v, dict):
            yield from paths(v, prefix + (k,))


ALL_PATHS = list(paths(SMOKE))


@st.composite
def mutated_budgets(draw):
    doc = copy.deepcopy(SMOKE)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(ALL_PATHS))
        parent = doc
        for k in path[:-1]:
            parent = parent.get(k) if isinstance(parent, dict) else None
            if not isinstance(parent, dict):
                break
        if not isinstance(parent, dict):
            continue
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete":
            parent.pop(path[-1], None)
        elif action == "replace":
            parent[path[-1]] = draw(values)
        else:
            parent[draw(st.text(min_size=1, max_size=8))] = draw(values)
    return doc


FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(mutated_budgets())
def test_mutated_budgets_load_or_fail_cleanly(doc):
    try:
        budget = parse_budget(doc, "fuzz.toml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.toml: ")
        assert "\n" not in str(exc)
    else:
        assert isinstance(budget, Budget)
        assert budget.train.epochs <= budget.limits.max_epochs


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_are_a_config_error(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("fuzz") / "b.toml"
    path.write_bytes(blob)
    try:
        load_budget(path)
    except ConfigError:
        pass


STUDY_TEXT = (BUDGETS / "studies" / "smoke_study.toml").read_text()
STUDY_LINES = STUDY_TEXT.splitlines()


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, len(STUDY_LINES) - 1), st.text(max_size=30)), min_size=1, max_size=3))
def test_mutated_study_files_load_or_fail_cleanly(tmp_path_factory, edits):
    lines = list(STUDY_LINES)
    for index, text in edits:
        lines[index] = text
    folder = tmp_path_factory.mktemp("study")
    (folder / "studies").mkdir()
    (folder / "archs").mkdir()
    (folder / "archs" / "digits_small.json").write_text((BUDGETS / "archs" / "digits_small.json").read_text())
    path = folder / "studies" / "s.toml"
    path.write_text("\n".join(lines))
    try:
        study = load_study(path)
    except ConfigError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(study, Study) and study.cells()


# Every integer choice of the grammar, mistyped: huge, negative, or a range of any width.
GRAMMAR_INTEGERS = [("space", "stages"), ("space", "convs_per_stage"), ("space", "channels"), ("space", "kernel"),
                    ("space", "head_hidden"), ("train", "batch_size")]
typos = st.one_of(st.integers(-10**30, 10**30), st.integers(0, 10**6), st.integers(0, 70))
integer_options = st.one_of(typos, st.lists(typos, min_size=1, max_size=3),
                            st.fixed_dictionaries({"min": typos, "max": typos}))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(GRAMMAR_INTEGERS), integer_options, st.sampled_from(sorted(BUILT_IN)),
       st.sampled_from([None, 1000, 100000]))
def test_mistyped_grammar_integers_are_rejected_or_bounded(key, value, dataset, train):
    doc = copy.deepcopy(SMOKE)
    doc[key[0]][key[1]] = value
    doc["data"]["dataset"] = dataset
    if train is None:
        doc["data"].pop("train")
    else:
        doc["data"]["train"] = train
    try:
        budget = parse_budget(doc, "fuzz.toml")
    except ConfigError as exc:
        assert f"fuzz.toml: {'.'.join(key)}" in str(exc) and "\n" not in str(exc)
        return
    _, height, width = BUILT_IN[dataset].input_shape
    options = getattr(budget.space if key[0] == "space" else budget.train, key[1])
    bound = {"stages": 16, "convs_per_stage": 16, "channels": 4096, "kernel": min(height, width),
             "head_hidden": 65536, "batch_size": min(train or 65536, 65536)}[key[1]]
    if key[1] == "head_hidden":  # options are tuples of widths
        options = [max(o, default=0) for o in options]
    assert len(options) <= 10_000 and max(options) <= bound
    stats = survey(budget, samples=2, authoritative_checks=0)  # and the grammar can be sampled at once
    assert stats.sampled == 2


# Every continuous choice, as a range of any bounds: an error naming the key, or a range in its domain.
FLOAT_KEYS = {("space", "dropout"): (0.0, 0.95), ("space", "head_dropout"): (0.0, 0.95),
              ("train", "lr_scale"): (1e-6, 1e3), ("train", "weight_decay"): (0.0, 1.0),
              ("train", "label_smoothing"): (0.0, 0.5)}
bounds = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10), st.sampled_from([0, 0.5, 1]))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(FLOAT_KEYS)), bounds, bounds, st.booleans())
def test_float_ranges_are_rejected_naming_the_key_or_stay_in_the_domain(key, low, high, log):
    from nas.config import FloatRange

    doc = copy.deepcopy(SMOKE)
    doc[key[0]][key[1]] = {"min": low, "max": high, "log": log}
    try:
        budget = parse_budget(doc, "fuzz.toml")
    except ConfigError as exc:
        assert f"fuzz.toml: {'.'.join(key)}" in str(exc) and "\n" not in str(exc)
        return
    found = getattr(budget.space if key[0] == "space" else budget.train, key[1])
    lowest, highest = FLOAT_KEYS[key]
    assert isinstance(found, FloatRange) and lowest <= found.min <= found.max <= highest
    assert found.min > 0 or not found.log
    stats = survey(budget, samples=2, authoritative_checks=0)
    assert stats.sampled == 2
