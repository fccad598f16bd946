"""``snnrun doctor``: what this installation runs on — versions, CPU, compiler, and each compiled
kernel as ``compiled`` or ``reference`` with the reason.

Building a kernel that is not built yet takes up to a minute or two (once per environment).
``--no-build`` reports only what is already loaded. Exit code 1 when a kernel failed to build
while a C++ compiler is present (a broken installation); runs still work, on the reference paths.
"""

from __future__ import annotations

USAGE = ("usage: snnrun doctor [--no-build]\n\nVersions, CPU, compiler and each compiled kernel "
         "(compiled / torch reference, and why).")


def lines(build: bool = True) -> tuple[list[str], bool]:
    """The report's lines, and whether every kernel that could be built was."""
    from . import kernels
    from .reproducibility import versions

    out = ["snnrun " + " ".join(f"{k}={v}" for k, v in versions().items())]
    cpu = kernels.cpu_features()
    out.append(f"cpu: {cpu['model']} ({cpu['machine']}, features {cpu['features']})")
    cxx = kernels.loader.compiler()
    out.append(f"c++ compiler: {cxx or 'none found (set CXX or install g++): reference paths only'}")
    out.append(f"kernel cache: {kernels.cache_root()}")
    healthy = True
    for name, ext in sorted(kernels.all_kernels().items()):
        if build and kernels.loader.ENABLED:
            try:
                ext.load()
            except kernels.KernelBuildError:
                pass  # strict mode: ext.error holds the reason
        if ext.module is not None:
            out.append(f"kernel {name}: compiled")
        else:
            reason = ext.error or "not built yet (run without --no-build)"
            out.append(f"kernel {name}: reference ({reason})")
            healthy &= not (ext.error and cxx and kernels.loader.ENABLED)
    return out, healthy


def main(args: list[str]) -> int:
    """Print the report; the exit code is 1 when a kernel failed to build despite a compiler."""
    if args and args[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    report, healthy = lines(build="--no-build" not in args)
    print("\n".join(report))
    return 0 if healthy else 1
