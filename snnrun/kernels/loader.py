"""The one loader of snnrun's C++ kernels and the one place that decides
whether a kernel's compiled path or its torch reference runs.

Each kernel is a C++ source in ``snnrun/kernels/csrc/`` compiled on first use with
``torch.utils.cpp_extension.load_inline`` (ninja and a C++ compiler are needed; ``python -m
snnrun.kernels`` builds them ahead of time and reports each). Builds are cached in

    $SNNRUN_KERNEL_CACHE  (default ~/.cache/snnrun/kernels)
      / <environment: Python, torch, interpreter prefix>
      / <kernel>-<source hash>-<CPU features hash>

so two virtual environments never rebuild or load each other's binaries, an edited source is
rebuilt, and a home directory shared by machines with different CPUs never loads a binary built
with ``-march=native`` for another CPU (that would stop with "illegal instruction").

A build runs under an exclusive ``fcntl`` lock next to its directory: a second process waits
(saying so), and torch's own ``lock`` file left behind by a build that was killed midway is
removed (it would otherwise make every later build wait forever without a word).

A failed build is logged once as a warning naming the kernel and the compiler's first error
lines, and the torch reference path runs (same results: each kernel's module says how). Where
failures must not pass silently — ``CI=true`` or ``SNNRUN_STRICT_KERNELS=1``, as the tests set —
a kernel that fails to build while a C++ compiler is present raises :class:`KernelBuildError`.
:func:`report` says, per kernel, whether it is built and which path ran in this process
(``summary.json`` records it; ``snnrun doctor`` prints it).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import shutil
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

import torch

log = logging.getLogger("snnrun.kernels")

SOURCES = Path(__file__).resolve().parent / "csrc"


class KernelBuildError(RuntimeError):
    """A kernel failed to build although a C++ compiler is present (strict mode only)."""


def strict() -> bool:
    """Whether a failed build is an error: in CI (``CI=true``) or with ``SNNRUN_STRICT_KERNELS=1``."""
    flag = os.environ.get("SNNRUN_STRICT_KERNELS")
    if flag is not None:
        return flag.strip().lower() in ("1", "true", "yes")
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def compiler() -> str | None:
    """The C++ compiler torch's builder would call (``$CXX``, else ``c++``), if it is on the PATH."""
    return shutil.which(os.environ.get("CXX", "c++"))


def cpu_features() -> dict:
    """The CPU's model and a hash of its feature flags (what ``-march=native`` compiles for)."""
    model, flags = platform.processor() or platform.machine(), ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "Model") and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = " ".join(sorted(value.split()))
    digest = hashlib.sha256(f"{platform.machine()}|{flags}".encode()).hexdigest()[:12]
    return {"machine": platform.machine(), "model": model, "features": digest}


def cache_root() -> Path:
    """This environment's kernel cache (see the module docstring)."""
    base = Path(os.environ.get("SNNRUN_KERNEL_CACHE") or Path.home() / ".cache" / "snnrun" / "kernels")
    env = f"{sys.prefix}|{sys.version}|{torch.__version__}|{torch.__file__}"
    tag = f"py{sys.version_info[0]}{sys.version_info[1]}-torch{torch.__version__.split('+')[0]}"
    return base / f"{tag}-{hashlib.sha256(env.encode()).hexdigest()[:10]}"


def _first_error_lines(err: BaseException, count: int = 4) -> str:
    """The compiler's diagnostics (``file:line: error: …`` without the path), else the first line."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    errors = [line[line.lower().index("error:"):] for line in lines if "error:" in line.lower()]
    return " | ".join(errors[:count] or lines[:1])[:600]


@contextlib.contextmanager
def _build_lock(build_dir: Path, name: str):
    """Hold an exclusive lock for ``build_dir``; clear torch's stale ``lock`` file once held."""
    build_dir.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: torch's own file lock only
        yield
        return
    with open(build_dir.with_name(build_dir.name + ".flock"), "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            log.warning("snnrun kernel %s: waiting for %s, which is building it in %s", name, holder, build_dir)
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        stale = build_dir / "lock"
        if stale.exists():  # every builder holds our lock first: this one was left by a killed build
            log.warning("snnrun kernel %s: removing a stale build lock left by an interrupted build (%s)", name, stale)
            stale.unlink(missing_ok=True)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Extension:
    """One C++ kernel: ``csrc/<source>``, the functions it exports, its compiler flags, and the shared
    headers of ``csrc/`` (``headers``) put before its source.

    :meth:`load` builds (once per process; cached on disk) and returns the module, or ``None``
    when it cannot be built here. :meth:`ran` records which path a call took, for :func:`report`.
    """

    def __init__(self, name: str, source: str, functions: list[str], cflags: list[str], headers: tuple[str, ...] = ()):
        self.name, self.source, self.functions, self.cflags = name, SOURCES / source, functions, cflags
        self.headers = tuple(SOURCES / h for h in headers)
        self.module: ModuleType | None = None
        self.error: str | None = None
        self.paths: set[str] = set()
        self._lock = threading.Lock()
        EXTENSIONS[name] = self

    def build_dir(self) -> Path:
        digest = hashlib.sha256(self.text().encode() + " ".join(self.cflags + self.functions).encode())
        return cache_root() / f"{self.name}-{digest.hexdigest()[:10]}-{cpu_features()['features']}"

    def text(self) -> str:
        """The C++ the build compiles: the shared headers, then the kernel's source."""
        return "\n".join([h.read_text() for h in self.headers] + [self.source.read_text()])

    def load(self) -> ModuleType | None:
        if self.module is not None or self.error is not None:
            return self.module
        with self._lock:
            if self.module is None and self.error is None:
                self._build()
            return self.module

    def _build(self) -> None:
        if not ENABLED:
            self.error = "compiled kernels switched off (SNNRUN_KERNELS=0)"
            return
        build_dir = self.build_dir()
        try:
            from torch.utils.cpp_extension import load_inline

            with _build_lock(build_dir, self.name):
                self.module = load_inline(name=f"snnrun_{self.name}_{build_dir.name.split('-')[1]}",
                                          cpp_sources=[self.text()], functions=self.functions,
                                          extra_cflags=self.cflags, build_directory=str(build_dir))
        except Exception as err:  # noqa: BLE001 - any build failure: report it, then the torch path
            self.error = _first_error_lines(err) or type(err).__name__
            cxx = compiler()
            message = (f"snnrun kernel {self.name} could not be built ({self.error}); "
                       f"the torch reference path runs instead")
            if cxx is None:
                message += " (no C++ compiler found: install g++ or set CXX)"
            elif strict():
                raise KernelBuildError(f"snnrun kernel {self.name} failed to build with {cxx}: {self.error}") from err
            log.warning(message)

    def ran(self, path: str) -> None:
        """Record that a call took the ``compiled`` or the ``reference`` path."""
        self.paths.add(path)

    def status(self) -> dict:
        built = "compiled" if self.module is not None else ("failed" if self.error else "not loaded")
        ran = "+".join(sorted(self.paths)) or "unused"
        entry = {"build": built, "ran": ran}
        if self.error:
            entry["reason"] = self.error
        return entry


#: every kernel, by name (filled as the kernel modules are imported)
EXTENSIONS: dict[str, Extension] = {}

#: ``SNNRUN_KERNELS=0`` switches every compiled path off (the reference paths run)
ENABLED = os.environ.get("SNNRUN_KERNELS", "1").strip().lower() not in ("0", "false", "no")


def reset_usage() -> None:
    """Forget which paths ran (a new run in the same process starts its own record)."""
    for ext in EXTENSIONS.values():
        ext.paths.clear()


def report() -> dict:
    """Per kernel (of those imported: :func:`snnrun.kernels.all_kernels` imports every one): whether it
    is built and which path ran in this process; the CPU it ran on."""
    return {"cpu": cpu_features(), "kernels": {name: ext.status() for name, ext in sorted(EXTENSIONS.items())}}
