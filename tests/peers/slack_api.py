"""Moved to `hookline.demo.peers.slack_api`; re-exported so existing imports keep working."""

from hookline.demo.peers.slack_api import *  # noqa: F403
from hookline.demo.peers.slack_api import __all__  # noqa: F401
