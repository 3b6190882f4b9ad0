"""The tests mirror the package: tests/<subpackage>/test_<module>.py, and no two test files share a
basename (pytest imports them by basename, so a second one would not be collected)."""

from collections import Counter

from conftest import ROOT


def test_no_two_test_files_share_a_basename():
    names = Counter(p.name for p in (ROOT / "tests").rglob("test_*.py"))
    assert [name for name, n in names.items() if n > 1] == []


def test_every_subpackage_has_its_test_folder():
    packages = sorted(p.parent.name for p in (ROOT / "nas").glob("*/__init__.py"))
    missing = [name for name in packages if not list((ROOT / "tests" / name).glob("test_*.py"))]
    assert missing == []
