"""The HTTP management API: authentication, tenant scoping and redaction of secrets."""

from hookline.api.app import create_app

__all__ = ["create_app"]
