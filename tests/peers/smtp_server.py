"""Moved to `hookline.demo.peers.smtp_server`; re-exported so existing imports keep working."""

from hookline.demo.peers.smtp_server import *  # noqa: F403
from hookline.demo.peers.smtp_server import __all__  # noqa: F401
