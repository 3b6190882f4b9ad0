"""nas.train.cpu._kernels: the build cache is keyed by the compiler and machine, reused across processes, and
remembers a failed build so that other processes neither retry it nor warn again."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nas.train.cpu import _kernels as kernels

REAL_CC = shutil.which(os.environ.get("CC", "cc"))
needs_cc = pytest.mark.skipif(REAL_CC is None, reason="no C compiler to wrap")

# Loads the kernel twice (a second load must come from the process's memo) and reports what happened.
LOAD = textwrap.dedent("""
    import json, warnings
    import nas
    from nas.train.cpu import _kernels as kernels
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # so a second warning would show rather than be deduplicated
        first = kernels.load("batchnorm")
        second = kernels.load("batchnorm")
    print(json.dumps({"built": first is not None, "same": first is second,
                      "warnings": [str(w.message) for w in caught]}))
""")


def write_cc(path: Path, version: str, body: str = 'exec "$REAL_CC" "$@"') -> Path:
    """A compiler wrapper that logs every call to <path>.log, answers --version with `version`, and
    otherwise runs `body` (by default: the real compiler)."""
    path.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo "$*" >> "{path}.log"
        if [ "$1" = "--version" ]; then echo "{version}"; exit 0; fi
        """) + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def compiles(cc: Path) -> list[str]:
    """The logged calls of `cc` that compiled (not the --version queries)."""
    log = Path(f"{cc}.log")
    return [line for line in log.read_text().splitlines() if "--version" not in line] if log.exists() else []


def load_in_subprocess(cache: Path, cc: Path) -> dict:
    env = {**os.environ, "NAS_CACHE": str(cache), "CC": str(cc), "REAL_CC": REAL_CC or ""}
    result = subprocess.run([sys.executable, "-c", LOAD], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@needs_cc
def test_a_second_process_loads_the_cached_library_without_compiling(tmp_path):
    cc = write_cc(tmp_path / "cc", "fakecc 1.0")
    first = load_in_subprocess(tmp_path / "cache", cc)
    assert first == {"built": True, "same": True, "warnings": []}
    [library] = (tmp_path / "cache" / "kernels").glob("batchnorm-*.so")
    assert len(compiles(cc)) == 1 and "-ffp-contract=off" in compiles(cc)[0] and "-fopenmp" in compiles(cc)[0]
    built_at = library.stat().st_mtime_ns

    second = load_in_subprocess(tmp_path / "cache", cc)
    assert second == {"built": True, "same": True, "warnings": []}
    assert len(compiles(cc)) == 1  # the compiler was asked for its version only
    assert library.stat().st_mtime_ns == built_at
    assert list((tmp_path / "cache" / "kernels").glob("batchnorm-*.so")) == [library]


@needs_cc
def test_the_key_names_the_compiler_its_version_and_the_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("REAL_CC", REAL_CC)
    cc = write_cc(tmp_path / "cc", "fakecc 1.0")
    monkeypatch.setenv("CC", str(cc))
    original = kernels.library_path("batchnorm")
    assert original == kernels.library_path("batchnorm")  # stable
    assert original.parent == tmp_path / "cache" / "kernels"

    write_cc(cc, "fakecc 1.1")  # the same path, upgraded
    upgraded = kernels.library_path("batchnorm")
    other = kernels.library_path("batchnorm", [str(write_cc(tmp_path / "cc2", "fakecc 1.0"))])
    monkeypatch.setattr("platform.machine", lambda: "arm64")
    elsewhere = kernels.library_path("batchnorm")
    assert len({original, upgraded, other, elsewhere}) == 4

    # an upgraded compiler builds its own library rather than loading the one its old version built
    write_cc(cc, "fakecc 1.0")
    assert load_in_subprocess(tmp_path / "cache", cc)["built"] and original.exists()
    write_cc(cc, "fakecc 1.1")
    assert load_in_subprocess(tmp_path / "cache", cc)["built"] and upgraded.exists()
    assert len(compiles(cc)) == 2


@needs_cc
def test_a_failed_build_is_remembered_warned_once_and_not_retried(tmp_path):
    cc = write_cc(tmp_path / "cc", "brokencc 1.0", 'echo "brokencc: cannot write output" >&2\nexit 1')
    first = load_in_subprocess(tmp_path / "cache", cc)
    assert first["built"] is False
    assert len(first["warnings"]) == 1  # two loads, one warning
    assert "batchnorm kernel could not be built" in first["warnings"][0]
    assert "brokencc: cannot write output" in first["warnings"][0]
    [marker] = (tmp_path / "cache" / "kernels").glob("batchnorm-*.failed")
    assert "brokencc: cannot write output" in marker.read_text()
    assert str(marker) in first["warnings"][0]  # the warning says what to delete to retry
    tried = len(compiles(cc))
    assert tried == 2  # with -fopenmp, then without

    second = load_in_subprocess(tmp_path / "cache", cc)
    assert second == {"built": False, "same": True, "warnings": []}
    assert len(compiles(cc)) == tried  # not run again

    # a fixed compiler has another key: the old marker does not block it
    write_cc(cc, "brokencc 1.1")
    third = load_in_subprocess(tmp_path / "cache", cc)
    assert third == {"built": True, "same": True, "warnings": []}
    assert len(compiles(cc)) == tried + 1


@needs_cc
def test_a_compiler_without_openmp_gets_a_build_without_it(tmp_path):
    # macOS clang: "clang: error: unsupported option '-fopenmp'"
    refuse_openmp = """case " $* " in *" -fopenmp "*)
        echo "clang: error: unsupported option '-fopenmp'" >&2; exit 1;; esac"""
    cc = write_cc(tmp_path / "cc", "clang 15 (no OpenMP)", refuse_openmp + '\nexec "$REAL_CC" "$@"')
    loaded = load_in_subprocess(tmp_path / "cache", cc)
    assert loaded == {"built": True, "same": True, "warnings": []}
    attempts = compiles(cc)
    assert len(attempts) == 2 and "-fopenmp" in attempts[0] and "-fopenmp" not in attempts[1]
