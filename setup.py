"""Builds hookline with its hot-path modules compiled to C by mypyc (`bench/RESULTS.md`: a tenth
less worker CPU per delivery in session 16, a sixth less per refused delivery with the failure
path in session 17). The rest of the package stays interpreted."""

from mypyc.build import mypycify
from setuptools import setup

# A module holding a class whose base is an untyped third-party class (mypy sees `Any`) must
# not be listed: mypyc compiles such classes, and they crashed the process (worker/runner's
# rebalance listener, channels/twilio_sms's HTTP client).
COMPILED = [
    "hookline/batching.py",
    "hookline/channels/base.py",
    "hookline/channels/http_endpoint.py",
    "hookline/channels/slack_message.py",
    "hookline/channels/smtp_email.py",
    "hookline/deadlines.py",
    "hookline/registry/outcomes.py",
    "hookline/worker/backoff.py",
    "hookline/worker/destinations.py",
    "hookline/worker/dispatch.py",
    "hookline/worker/failures.py",
    "hookline/worker/offsets.py",
    "hookline/worker/publisher.py",
]

# Type-checked the same way in any environment: every third-party type unknown (`Any`, which
# mypyc leaves unchecked at run time), without the project's mypy configuration (its pydantic
# plugin). `mypy --strict` with that configuration checks the whole package separately.
MYPY_FLAGS = ["--config-file=", "--no-site-packages", "--ignore-missing-imports"]

setup(ext_modules=mypycify([*MYPY_FLAGS, *COMPILED], opt_level="3"))
