"""constraints.txt, which every install uses, pins each dependency pyproject.toml names, within
the range pyproject.toml allows: a range changed without regenerating the lock fails here."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def _pinned() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split("==", 1)
            pins[canonicalize_name(name)] = Version(version.strip())
    return pins


def _required() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"].values()
    named = [*project["dependencies"], *(text for extra in extras for text in extra)]
    return [Requirement(text) for text in named if Requirement(text).name != project["name"]]


def test_every_dependency_is_pinned_within_its_range() -> None:
    pinned = _pinned()
    problems = []
    for requirement in _required():
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        version = pinned.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{requirement.name} is not pinned")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement.name}=={version} is outside {requirement.specifier}")

    assert problems == [], "regenerate constraints.txt (its header says how): " + "; ".join(
        problems
    )
