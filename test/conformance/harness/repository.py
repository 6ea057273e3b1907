"""Assembles the model repository that tritonserver serves, in a scratch directory.

Configs live in models/<name>/config.pbtxt; the Python code is shared by model
family in model-code/. Building a copy keeps the source tree free of anything
the server or the Python backend writes, and lets several models share one
model.py without symlinks in git.
"""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
CONFIGS = HERE / "models"
CODE = HERE / "model-code"


def _code_for(model: str) -> Path:
    if model.startswith("identity_"):
        return CODE / "identity.py"
    if model == "add_sub":
        return CODE / "add_sub.py"
    if model == "repeat_int32":
        return CODE / "repeat.py"
    if model == "tokens":
        return CODE / "tokens.py"
    raise ValueError(f"no model code for {model}")


def model_names() -> list[str]:
    return sorted(p.name for p in CONFIGS.iterdir() if (p / "config.pbtxt").is_file())


def build(target: Path) -> Path:
    if target.exists():
        shutil.rmtree(target)
    for name in model_names():
        version_dir = target / name / "1"
        version_dir.mkdir(parents=True)
        shutil.copyfile(CONFIGS / name / "config.pbtxt", target / name / "config.pbtxt")
        shutil.copyfile(_code_for(name), version_dir / "model.py")
    return target
