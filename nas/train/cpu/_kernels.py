"""`load(name)`: the C kernel nas/train/cpu/<name>.c, compiled once per machine and compiler into the nas cache.

The kernels (so far batchnorm.c) are plain C, threaded with OpenMP: no torch headers, so a build
is quick with the system compiler (`cc`, or $CC). They link the same libgomp.so.1
soname that torch ships, so the process keeps one OpenMP runtime. A compiler that rejects
-fopenmp (macOS clang) gets a second try without it: the kernel then runs single-threaded, with
the same results (the C code splits work by thread count, not by OpenMP).

The library is <cache>/kernels/<name>-<key>.so, where the key hashes the source, the flags, the
compiler (as $CC names it, the file it resolves to, and the first line of `$CC --version`),
sys.platform and platform.machine(): a cache shared between machines, architectures or compilers
never serves a library built by another. It is written atomically, so parallel workers and
upgrades never load a stale or half-written one, and a later process loads it without compiling.

A failed build leaves <name>-<key>.failed beside it, holding the error: later processes with the
same key return None at once, without running the compiler or warning again (delete the file to
retry); a changed compiler has another key, so it is tried afresh. `load` warns at most once per
process. Without a kernel the callers use torch's own (slower) kernels.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

from nas._cache import cache_dir

_OPENMP = "-fopenmp"
# no -march: the cache may be shared. -ffp-contract=off: no FMA contraction, so every compiler and
# both target clones round alike (gcc's -std=c11 implies it, clang's does not).
_CFLAGS = ("-O3", _OPENMP, "-shared", "-fPIC", "-std=c11", "-ffp-contract=off")
_loaded: dict[str, ctypes.CDLL | None] = {}
_warned = False  # one warning per process, whichever kernel failed


def source(name: str) -> Path:
    return Path(__file__).with_name(f"{name}.c")


def compiler() -> list[str]:
    """The C compiler command: $CC split like a shell word list (`ccache cc` works), else `cc`."""
    return shlex.split(os.environ.get("CC", "")) or ["cc"]


def _compiler_identity(command: list[str]) -> str:
    found = shutil.which(command[0])
    resolved = os.path.realpath(found) if found else "(not found)"
    try:
        run = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=30)
        lines = (run.stdout or run.stderr).strip().splitlines()
        version = lines[0] if lines else f"(exit {run.returncode})"
    except (OSError, subprocess.SubprocessError) as exc:  # no such compiler: the build will say so
        version = f"({type(exc).__name__})"
    return "\0".join([shlex.join(command), resolved, version])


def library_path(name: str, command: list[str] | None = None) -> Path:
    """Where the kernel `name` built by `command` (default: `compiler()`) lives in the nas cache."""

    command = command or compiler()
    parts = [source(name).read_bytes(), shlex.join(_CFLAGS).encode(), _compiler_identity(command).encode(),
             sys.platform.encode(), platform.machine().encode()]
    key = hashlib.sha256(b"\0".join(parts)).hexdigest()
    return cache_dir() / "kernels" / f"{name}-{key[:16]}.so"


def _compile(command: list[str], src: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / target.name
        attempts = [_CFLAGS, tuple(flag for flag in _CFLAGS if flag != _OPENMP)]
        for i, flags in enumerate(attempts):
            try:
                subprocess.run([*command, *flags, str(src), "-o", str(built)], check=True, capture_output=True,
                               text=True, timeout=120)
                break
            except subprocess.CalledProcessError:
                if i + 1 == len(attempts):
                    raise
        os.replace(built, target)  # atomic: parallel workers never load a half-written library


def _open(command: list[str], src: Path, target: Path) -> ctypes.CDLL:
    try:
        if not target.exists():
            _compile(command, src, target)
        return ctypes.CDLL(str(target))
    except OSError:
        if not target.exists():
            raise
        _compile(command, src, target)  # an unreadable or truncated file in the cache: build it again
        return ctypes.CDLL(str(target))


def _remember_failure(marker: Path, command: list[str], exc: BaseException) -> bool:
    detail = getattr(exc, "stderr", None) or str(exc)
    text = f"{type(exc).__name__} building with {shlex.join(command)}:\n{detail.strip()}\n"
    tmp = marker.with_name(f".{marker.name}.{os.getpid()}.tmp")
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text)
        os.replace(tmp, marker)
        return True
    except OSError:  # a read-only cache: every process then tries again, which is only slower
        tmp.unlink(missing_ok=True)
        return False


def load(name: str) -> ctypes.CDLL | None:
    """The compiled kernel `name`, building it on first use; None when that fails (now or before,
    see the module docstring), with one warning per process at most."""
    global _warned
    if name in _loaded:
        return _loaded[name]
    command, src = compiler(), source(name)
    target = library_path(name, command)
    marker = target.with_suffix(".failed")
    library = None
    if target.exists() or not marker.exists():
        try:
            library = _open(command, src, target)
        except (OSError, subprocess.SubprocessError) as exc:
            remembered = _remember_failure(marker, command, exc)
            detail = (getattr(exc, "stderr", None) or str(exc)).strip()
            reason = f"{type(exc).__name__}: {detail.splitlines()[-1] if detail else exc}"
            if not _warned:
                _warned = True
                skip = f" Later runs with this compiler skip the build while {marker} exists." if remembered else ""
                warnings.warn(f"nas: the CPU {name} kernel could not be built ({reason}); training uses torch's "
                              f"slower kernel. Install a C compiler (cc, or set CC) to get it.{skip}", stacklevel=3)
    _loaded[name] = library
    return library
