"""Moved to `hookline.demo.peers.twilio_api`; re-exported so existing imports keep working."""

from hookline.demo.peers.twilio_api import *  # noqa: F403
from hookline.demo.peers.twilio_api import __all__  # noqa: F401
