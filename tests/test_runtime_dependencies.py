"""A deployment installs hookline without the `demo` extra: everything but `hookline demo` runs
without the extra's packages, and `hookline demo` then names the extra to install."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

# The demo extra's distributions import under their own names.
DEMO_ONLY = sorted(
    Requirement(text).name.replace("-", "_") for text in PROJECT["optional-dependencies"]["demo"]
)

# Run first in each child: the demo's packages are as absent as on a deployment's install.
ABSENT = f"""
import importlib.abc
import sys

class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in {DEMO_ONLY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Absent())
"""

# Imports every hookline module but the demo's; prints any demo module that came along.
IMPORT_RUNTIME = """
import importlib
import pkgutil

def import_tree(package):
    for module in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if module.name == "hookline.demo":
            continue
        imported = importlib.import_module(module.name)
        if module.ispkg:
            import_tree(imported)

import_tree(importlib.import_module("hookline"))
print(sorted(name for name in sys.modules if name.split(".")[:2] == ["hookline", "demo"]))
"""

# What the `hookline` console script does.
CONSOLE_SCRIPT = """
from hookline.cli import main
sys.argv[0] = "hookline"
sys.exit(main())
"""


def _run_without_demo_packages(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", ABSENT + code, *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )


def test_the_demo_packages_are_not_runtime_dependencies() -> None:
    runtime = {Requirement(text).name.replace("-", "_") for text in PROJECT["dependencies"]}

    assert set(DEMO_ONLY) >= {"aiosmtpd", "rich", "standardwebhooks"}
    assert runtime.isdisjoint(DEMO_ONLY)
    assert "hookline[demo]" in PROJECT["optional-dependencies"]["test"]


def test_every_module_but_the_demo_imports_without_the_demo_packages() -> None:
    result = _run_without_demo_packages(IMPORT_RUNTIME)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", "a runtime module imports the demo"


def test_help_works_without_the_demo_packages() -> None:
    result = _run_without_demo_packages(CONSOLE_SCRIPT, "--help")

    assert result.returncode == 0, result.stderr
    for command in ("worker", "api", "keys", "events", "demo"):
        assert command in result.stdout


def test_demo_without_its_packages_names_the_extra_to_install() -> None:
    result = _run_without_demo_packages(CONSOLE_SCRIPT, "demo")

    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("hookline: error: `hookline demo` needs the demo extra")
    assert "pip install 'hookline[demo]'" in result.stderr
    assert "Traceback" not in result.stderr
