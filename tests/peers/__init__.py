"""Moved to `hookline.demo.peers`; re-exported so existing imports keep working."""

from hookline.demo.peers import *  # noqa: F403
from hookline.demo.peers import __all__  # noqa: F401
