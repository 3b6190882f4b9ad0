"""Run ids as people type them (unique prefixes, as git) and finding the store from any folder."""

from __future__ import annotations

import pytest

from nas.cli import main
from nas.errors import RunNotFound, StoreNotFound
from nas.tracking import find_store, resolve_id


class FakeStore:
    uri = "sqlite:///fake/mlflow.db"

    def __init__(self, ids):
        self.ids = ids

    def has_run(self, run_id):
        return run_id in self.ids

    def all_run_ids(self):
        return list(self.ids)


IDS = ["6f6b7047ebd443caa53f594ea1f8fd03", "6f6b7047aaaa43caa53f594ea1f8fd03", "0123456789abcdef0123456789abcdef"]


def test_a_full_id_and_a_unique_prefix_resolve_to_the_run():
    store = FakeStore(IDS)
    assert resolve_id(store, IDS[2]) == IDS[2]
    assert resolve_id(store, IDS[2][:12]) == IDS[2]  # the 12 characters the reports print
    assert resolve_id(store, IDS[0][:9]) == IDS[0]


def test_an_ambiguous_prefix_lists_its_matches():
    with pytest.raises(RunNotFound, match="matches 2 runs") as err:
        resolve_id(FakeStore(IDS), "6f6b7047")
    assert IDS[0] in str(err.value) and IDS[1] in str(err.value)


def test_a_short_or_unknown_id_says_what_to_give():
    with pytest.raises(RunNotFound, match="at least 8"):
        resolve_id(FakeStore(IDS), "6f6b")
    with pytest.raises(RunNotFound, match="no run 'ffffffffff'"):
        resolve_id(FakeStore(IDS), "ffffffffff")


def test_the_store_is_found_in_a_parent_folder(tmp_path, monkeypatch):
    (tmp_path / "mlruns").mkdir()
    (tmp_path / "mlruns" / "mlflow.db").write_bytes(b"")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert find_store() == f"sqlite:///{tmp_path.resolve() / 'mlruns' / 'mlflow.db'}"


def test_reading_commands_never_create_a_store(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(StoreNotFound):
        find_store()
    for argv in (["runs"], ["verify", "0123456789ab"], ["report", "0123456789ab"], ["export", "0123456789ab"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "no tracking store: looked for mlruns/mlflow.db in" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "mlruns").exists()
    assert find_store(create=True).endswith("mlruns/mlflow.db")  # search and study start one


def test_an_explicit_uri_to_a_missing_file_is_an_error(tmp_path):
    with pytest.raises(StoreNotFound, match="does not exist"):
        find_store(f"sqlite:///{tmp_path}/nothing.db")
