"""Moved to `hookline.demo.peers.http_receiver`; re-exported so existing imports keep working."""

from hookline.demo.peers.http_receiver import *  # noqa: F403
from hookline.demo.peers.http_receiver import __all__  # noqa: F401
