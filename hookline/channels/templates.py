"""Sandboxed Jinja2 rendering of every user-supplied template, within the template budget.

A render runs inline on the event loop; the budget (HOOKLINE_TEMPLATE_*) keeps it short and
small: it stops a render that takes too long, loops too often or builds too much, and refuses
anything larger than the output limit before building it. A template is also tried at save,
against a sample event, so that one over budget is refused with the field and the limit.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, NamedTuple

from cachetools import LRUCache
from jinja2 import ChainableUndefined, StrictUndefined, Template, TemplateError, Undefined
from jinja2.exceptions import SecurityError, TemplateSyntaxError

from hookline.channels.template_budget import OverBudget, RenderBudget
from hookline.channels.template_sandbox import BudgetedSandbox
from hookline.errors import DeliveryError
from hookline.schemas import EmailConfigs, HttpConfigs, SlackConfigs, SmsConfigs
from hookline.schemas.deliveries import Notification
from hookline.settings import TemplateBudget

_TEMPLATE_MISTAKES = (
    TemplateError,
    ArithmeticError,
    AttributeError,
    LookupError,
    RecursionError,
    TypeError,
    ValueError,
)
"""What a template's own mistakes raise; each fails only the delivery that renders it."""

_LOOP_SHARE = 0.1
"""Share of the time budget that renders may hold the event loop for before it goes round."""

_TEMPLATE_FIELDS: dict[type[object], tuple[str, ...]] = {
    HttpConfigs: ("payload_template",),
    SlackConfigs: ("blocks_template",),
    EmailConfigs: ("subject_template", "body_template"),
    SmsConfigs: ("message_template",),
}

_SAMPLE_CONTEXT: dict[str, Any] = {
    "event": {
        "id": "evt_sample",
        "type": "object.created",
        "occurred_at": "2024-01-01T00:00:00Z",
        "data": {},
    },
    "webhook": {"id": "wh_sample", "name": "sample"},
    "delivery": {"id": "dlv_sample", "attempt": 1},
}
"""What a template is tried against at save: the shape of template_context, with no data."""


class _TemplateField(NamedTuple):
    """One template of a channel's configs, and whether it renders HTML (autoescaped)."""

    name: str
    source: str
    html: bool


def _template_fields(configs: object) -> list[_TemplateField]:
    """The templates set in a built-in channel's configs; none for a plugin's."""
    html = isinstance(configs, EmailConfigs) and configs.content_type == "html"
    return [
        _TemplateField(name, source, html and name == "body_template")
        for name in _TEMPLATE_FIELDS.get(type(configs), ())
        if (source := getattr(configs, name)) is not None
    ]


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


class _Compiler:
    """One sandbox and its compiled templates, least recently used dropped first."""

    def __init__(
        self, budget: TemplateBudget, html: bool, undefined: type[Undefined], keep: int
    ) -> None:
        """`keep`: how many compiled templates to keep for the next call (0: none)."""
        self._environment = BudgetedSandbox(autoescape=html, undefined=undefined)
        self._max_tokens = budget.max_tokens
        self._compiled: LRUCache[str, Template] | None = LRUCache(keep) if keep > 0 else None

    def template(self, source: str) -> Template:
        """`source` compiled, or TemplateSyntaxError."""
        template = None if self._compiled is None else self._compiled.get(source)
        if template is not None:
            return template
        self._check_tokens(source)
        try:
            template = self._environment.from_string(source)
        except (RecursionError, SyntaxError):
            # Jinja's parser recurses per level of nesting, and Python compiles the code Jinja
            # writes only up to 20 nested loops and 100 levels of indentation.
            raise TemplateSyntaxError("the template is nested too deeply", 1) from None
        if self._compiled is not None:
            self._compiled[source] = template
        return template

    def _check_tokens(self, source: str) -> None:
        # Compiling takes time in proportion to the template's tokens: count them (up to the
        # limit) before compiling.
        count = 0
        for _, kind, _ in self._environment.lex(source):
            count += kind != "whitespace"
            if count > self._max_tokens:
                raise OverBudget(
                    f"it has over the limit of {self._max_tokens:,} tokens of template "
                    "syntax (HOOKLINE_TEMPLATE_MAX_TOKENS)"
                )


class _LoopShare:
    """How long renders have held the event loop since it last went round; once that is
    `share`, the next render waits for the loop to go round (poll I/O, run timers and other
    tasks) first. Many deliveries become ready at once: without this, each rendering within
    the budget, together they would hold the loop for as many budgets."""

    def __init__(self, share: float) -> None:
        self._share = share
        self._held = 0.0
        self._went_round = asyncio.Event()

    async def turn(self) -> None:
        """Return when renders may hold the loop again."""
        while self._held >= self._share:
            await self._went_round.wait()

    def held(self, seconds: float) -> None:
        """A render held the loop for `seconds`."""
        if self._held == 0.0:
            self._went_round.clear()
            # Runs when the loop next goes round, before the renders that wait for it.
            asyncio.get_running_loop().call_soon(self._round)
        self._held += seconds

    def _round(self) -> None:
        self._held = 0.0
        self._went_round.set()


class TemplateRenderer:
    """Compiles each template source once and renders it in the sandbox, within the budget."""

    def __init__(self, budget: TemplateBudget, cache_size: int = 1024) -> None:
        self._budget = budget
        self._strict = {
            html: _Compiler(budget, html, StrictUndefined, cache_size) for html in (False, True)
        }
        # At save the sample event has none of the data a template may use: leniently undefined.
        self._lenient = {
            html: _Compiler(budget, html, ChainableUndefined, keep=0) for html in (False, True)
        }
        self._loop_share = _LoopShare(budget.time_budget * _LOOP_SHARE)

    async def render(
        self, source: str, notification: Notification, *, field: str, html: bool = False
    ) -> str:
        """Render `source` (autoescaped if `html`) when it is the renders' turn on the event
        loop; any failure is a permanent DeliveryError naming `field`, and for a template over
        budget, the limit."""
        await self._loop_share.turn()
        started = time.perf_counter()
        try:
            return self._render_now(source, notification, field, html)
        finally:
            self._loop_share.held(time.perf_counter() - started)

    def _render_now(self, source: str, notification: Notification, field: str, html: bool) -> str:
        try:
            template = self._strict[html].template(source)
            return self._rendered(template, template_context(notification))
        except OverBudget as exc:
            raise DeliveryError(
                f"{field} is over the template budget: {exc}", retryable=False
            ) from None
        except _TEMPLATE_MISTAKES as exc:
            raise DeliveryError(f"{field} failed to render: {exc}", retryable=False) from exc

    def trial(self, configs: object) -> list[tuple[str, str]]:
        """(field, problem) for each template in `configs` that does not compile, is over
        budget on a sample event, or reaches for what the sandbox forbids."""
        problems = []
        for field in _template_fields(configs):
            problem = self._problem(field.source, field.html)
            if problem is not None:
                problems.append((field.name, problem))
        return problems

    def _problem(self, source: str, html: bool) -> str | None:
        try:
            template = self._lenient[html].template(source)
            self._rendered(template, _SAMPLE_CONTEXT)
        except OverBudget as exc:
            return f"over the template budget: {exc}"
        except TemplateSyntaxError as exc:
            return f"not a valid template: {exc.message} (line {exc.lineno})"
        except SecurityError as exc:
            return f"not allowed: {exc}"
        except _TEMPLATE_MISTAKES:
            return None  # real events may well hold the data this one lacks
        return None

    def _rendered(self, template: Template, context: dict[str, Any]) -> str:
        with RenderBudget(self._budget).active():
            return template.render(context)
