"""What a run records about the code that produced it: the commit, and whether the tree was modified."""

from __future__ import annotations

import subprocess

from nas.tracking._store import _git_state


def _git(folder, *args):
    subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)


def test_a_modified_tree_is_fingerprinted_beside_its_commit(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "train.py").write_text("lr = 0.003\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.email=a@b", "-c", "user.name=n", "commit", "-qm", "one")
    commit, tree = _git_state(tmp_path)
    assert len(commit) == 40 and tree == "clean"
    (tmp_path / "train.py").write_text("lr = 0.01\n")
    first = _git_state(tmp_path)[1]
    assert first.startswith("modified, diff sha256 ") and first.endswith(", 1 files")
    (tmp_path / "train.py").write_text("lr = 0.1\n")
    (tmp_path / "new.py").write_text("x = 1\n")  # untracked files count too
    second = _git_state(tmp_path)[1]
    assert second != first and second.endswith(", 2 files")


def test_outside_a_checkout_the_tree_is_unknown(tmp_path):
    assert _git_state(tmp_path) == ("", "unknown")
