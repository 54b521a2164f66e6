"""Sandboxed Jinja2 rendering of every user-supplied template."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hookline.errors import DeliveryError
from hookline.schemas.deliveries import Notification

MAX_OUTPUT = 256 * 1024
"""Longest rendered template; longer output is a template error, not a huge message."""
_MAX_REPEAT = 100_000
_MAX_EXPONENT = 100


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with `*` and `**` bounded so a template cannot exhaust memory."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > _MAX_EXPONENT:
            raise SecurityError(f"exponent over {_MAX_EXPONENT} is not allowed")
        if operator == "*" and _repeats_too_much(left, right):
            raise SecurityError(f"repeating a string or list over {_MAX_REPEAT} times")
        return super().call_binop(context, operator, left, right)


def _repeats_too_much(left: Any, right: Any) -> bool:
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, str | list | tuple) and isinstance(count, int):
            return len(sequence) * count > _MAX_REPEAT
    return False


def template_context(notification: Notification) -> dict[str, Any]:
    """What every template sees: the event, the webhook and the delivery."""
    event = notification.event
    return {
        "event": {
            "id": event.event_id,
            "type": event.event_type.value,
            "occurred_at": event.occurred_at.isoformat().replace("+00:00", "Z"),
            "data": event.data,
        },
        "webhook": {"id": notification.webhook_id, "name": notification.webhook_name},
        "delivery": {"id": notification.delivery_id, "attempt": notification.attempt},
    }


class TemplateRenderer:
    """Compiles each template source once and renders it in the sandbox."""

    def __init__(self, cache_size: int = 1024) -> None:
        self._environment = _BoundedSandbox(undefined=StrictUndefined, autoescape=False)
        self._compiled: OrderedDict[str, Template] = OrderedDict()
        self._cache_size = cache_size

    def render(self, source: str, notification: Notification, *, field: str) -> str:
        """Render `source`; any failure is a permanent DeliveryError naming `field`."""
        try:
            output = self._template(source).render(template_context(notification))
        except (TemplateError, SecurityError, ArithmeticError, TypeError, ValueError) as exc:
            raise DeliveryError(f"{field} failed to render: {exc}", retryable=False) from exc
        if len(output) > MAX_OUTPUT:
            raise DeliveryError(
                f"{field} rendered {len(output)} characters, over the {MAX_OUTPUT} limit",
                retryable=False,
            )
        return output

    def _template(self, source: str) -> Template:
        template = self._compiled.get(source)
        if template is None:
            template = self._environment.from_string(source)
            self._compiled[source] = template
            if len(self._compiled) > self._cache_size:
                self._compiled.popitem(last=False)
        return template
