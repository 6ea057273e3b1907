"""Where the real tritonserver, its Python backend and perf_analyzer live in the venv.

nvidia-pytriton ships tritonserver 2.51.0 with auditwheel-renamed shared
libraries (libcudart-<hash>.so.12..., libb64-<hash>.so.0d) in
site-packages/nvidia_pytriton.libs. tritonserver finds them through its RPATH,
but the Python backend stub and tritonclient's perf_analyzer look them up by
their plain sonames, so `prepare` links them under those names and checks
with ldd that nothing is left unresolved. tritonserver and the stub also need
the interpreter's libpython3.X.so.1.0.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

LAYOUT_FILE = "conformance-layout.json"


@dataclasses.dataclass(frozen=True)
class Layout:
    venv: Path
    python: Path
    tritonserver: Path
    backend_dir: Path
    # LD_LIBRARY_PATH entries for tritonserver and its Python backend stub.
    server_lib_dirs: tuple[Path, ...]
    perf_analyzer: Path
    perf_lib_dirs: tuple[Path, ...]

    def server_env(self, base: dict[str, str]) -> dict[str, str]:
        env = dict(base)
        env["LD_LIBRARY_PATH"] = _join_paths(self.server_lib_dirs, base.get("LD_LIBRARY_PATH"))
        # The stub embeds libpython and derives sys.prefix from the first
        # python3 on PATH: putting the venv first gives model code its numpy.
        env["PATH"] = _join_paths((self.venv / "bin",), base.get("PATH"))
        # Keep the model sources free of __pycache__ litter.
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env

    def perf_env(self, base: dict[str, str]) -> dict[str, str]:
        env = dict(base)
        env["LD_LIBRARY_PATH"] = _join_paths(self.perf_lib_dirs, base.get("LD_LIBRARY_PATH"))
        return env


def _join_paths(dirs: tuple[Path, ...], existing: str | None) -> str:
    parts = [str(d) for d in dirs]
    if existing:
        parts.append(existing)
    return ":".join(parts)


def load(venv: Path) -> Layout:
    raw = json.loads((venv / LAYOUT_FILE).read_text())
    return Layout(
        venv=Path(raw["venv"]),
        python=Path(raw["python"]),
        tritonserver=Path(raw["tritonserver"]),
        backend_dir=Path(raw["backend_dir"]),
        server_lib_dirs=tuple(Path(p) for p in raw["server_lib_dirs"]),
        perf_analyzer=Path(raw["perf_analyzer"]),
        perf_lib_dirs=tuple(Path(p) for p in raw["perf_lib_dirs"]),
    )


def _single(directory: Path, pattern: str) -> Path:
    matches = sorted(directory.glob(pattern))
    if len(matches) != 1:
        raise SystemExit(f"expected exactly one {pattern} in {directory}, found {[m.name for m in matches]}")
    return matches[0]


def _relink(link: Path, target: Path) -> None:
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)


def _assert_resolves(binary: Path, lib_dirs: tuple[Path, ...]) -> None:
    env = dict(os.environ, LD_LIBRARY_PATH=_join_paths(lib_dirs, os.environ.get("LD_LIBRARY_PATH")))
    out = subprocess.run(["ldd", str(binary)], env=env, capture_output=True, text=True, check=False)
    missing = [line.strip() for line in (out.stdout + out.stderr).splitlines() if "not found" in line]
    if out.returncode != 0 or missing:
        raise SystemExit(f"{binary} cannot run on this machine:\n  " + "\n  ".join(missing or [out.stderr.strip()]))


def prepare(venv: Path) -> Layout:
    site = Path(sysconfig.get_paths()["purelib"])
    bundled_libs = site / "nvidia_pytriton.libs"
    dist = site / "pytriton" / "tritonserver"
    py_version = f"{sys.version_info.major}.{sys.version_info.minor}"

    libpython_dir = Path(sysconfig.get_config_var("LIBDIR"))
    libpython = libpython_dir / f"libpython{py_version}.so.1.0"
    if not libpython.exists():
        raise SystemExit(
            f"{libpython} is missing: the Python backend stub needs a shared-library build of Python {py_version}"
        )

    stub = dist / "python_backend_stubs" / py_version / "triton_python_backend_stub"
    if not stub.exists():
        raise SystemExit(f"nvidia-pytriton has no Python backend stub for Python {py_version} ({stub})")

    # Triton looks for backends/<name>/libtriton_<name>.so and the Python
    # backend expects its stub beside it, built for the interpreter in use.
    python_backend = venv / "triton-backends" / "python"
    python_backend.mkdir(parents=True, exist_ok=True)
    _relink(python_backend / "libtriton_python.so", dist / "backends" / "python" / "libtriton_python.so")
    _relink(
        python_backend / "triton_python_backend_utils.py",
        dist / "backends" / "python" / "triton_python_backend_utils.py",
    )
    _relink(python_backend / "triton_python_backend_stub", stub)

    perf_libs = venv / "perf-analyzer-libs"
    perf_libs.mkdir(exist_ok=True)
    _relink(perf_libs / "libb64.so.0d", _single(bundled_libs, "libb64-*.so.0d"))
    _relink(perf_libs / "libcudart.so.12", _single(bundled_libs, "libcudart-*.so.12*"))

    layout = Layout(
        venv=venv,
        python=venv / "bin" / "python",
        tritonserver=dist / "bin" / "tritonserver",
        backend_dir=venv / "triton-backends",
        server_lib_dirs=(libpython_dir, bundled_libs),
        perf_analyzer=venv / "bin" / "perf_analyzer",
        perf_lib_dirs=(perf_libs,),
    )
    _assert_resolves(layout.tritonserver, layout.server_lib_dirs)
    _assert_resolves(python_backend / "triton_python_backend_stub", layout.server_lib_dirs)
    _assert_resolves(layout.perf_analyzer, layout.perf_lib_dirs)

    raw = {
        field.name: (
            [str(p) for p in getattr(layout, field.name)]
            if isinstance(getattr(layout, field.name), tuple)
            else str(getattr(layout, field.name))
        )
        for field in dataclasses.fields(layout)
    }
    (venv / LAYOUT_FILE).write_text(json.dumps(raw, indent=2) + "\n")
    return layout


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "prepare":
        raise SystemExit("usage: python -m harness.layout prepare <venv>")
    prepare(Path(sys.argv[2]).resolve())
