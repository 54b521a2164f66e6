"""A copy of hookline's source with its hot-path modules compiled by mypyc (setup.py's list), for
the bench's workers to run from: `python -m bench.run --compiled` measures the compiled build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.stack import REPO


def compiled_tree(out: Path) -> Path:
    """Build the compiled copy under `out` (needs a C compiler and Python's headers, as
    `HOOKLINE_COMPILE=1 scripts/install` does) and return its root."""
    tree = out / "compiled"
    shutil.rmtree(tree, ignore_errors=True)
    skipped = shutil.ignore_patterns("__pycache__", "*.so")
    shutil.copytree(REPO / "hookline", tree / "hookline", ignore=skipped)
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, tree / name)
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=tree,
        env=os.environ | {"HOOKLINE_COMPILE": "1"},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return tree
