"""Builds hookline as pure Python; with `HOOKLINE_COMPILE=1`, its hot-path modules are compiled
to C by mypyc (a speed option: it needs a C compiler; `bench/README.md` gives the difference)."""

import os

from setuptools import setup

# A module holding a class whose base is an untyped third-party class (mypy sees `Any`) must
# not be listed: mypyc compiles such classes, and they crash the process.
COMPILED = [
    "hookline/batching.py",
    "hookline/channels/base.py",
    "hookline/channels/http_endpoint.py",
    "hookline/channels/slack_message.py",
    "hookline/channels/smtp_email.py",
    "hookline/deadlines.py",
    "hookline/registry/outcomes.py",
    "hookline/worker/admission.py",
    "hookline/worker/backoff.py",
    "hookline/worker/dispatch.py",
    "hookline/worker/failures.py",
    "hookline/worker/offsets.py",
    "hookline/worker/publisher.py",
]

# Type-checked the same way in any environment: every third-party type unknown (`Any`, which
# mypyc leaves unchecked at run time), without the project's mypy configuration (its pydantic
# plugin). `mypy --strict` with that configuration checks the whole package separately.
MYPY_FLAGS = ["--config-file=", "--no-site-packages", "--ignore-missing-imports"]


def _extensions() -> list[object]:
    if os.environ.get("HOOKLINE_COMPILE") != "1":
        return []
    from mypyc.build import mypycify

    return list(mypycify([*MYPY_FLAGS, *COMPILED], opt_level="3"))


setup(ext_modules=_extensions())
