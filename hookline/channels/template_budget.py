"""What one render spends (time, loop iterations, bytes built), counted as the template runs.

The sandbox (template_sandbox) and the bounded filters ask the active RenderBudget before they
build anything large and charge it for what they built; the first check over a limit raises
OverBudget, and so does every check after it, so a template cannot swallow the error and go on.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NoReturn, TypeVar

from jinja2.exceptions import SecurityError
from markupsafe import Markup

from hookline.errors import HooklineError
from hookline.settings import TemplateBudget

V = TypeVar("V")

_SETTING = "HOOKLINE_TEMPLATE_"
_ACTIVE: ContextVar[RenderBudget | None] = ContextVar("hookline_render_budget", default=None)


class OverBudget(SecurityError, HooklineError):
    """A template went over its budget; the message names the limit and the setting."""


class NoRenderUnderWay(HooklineError):
    """A bounded operation ran outside a render: Jinja folding constants while it compiles.

    Jinja treats any error there as "not constant" and evaluates the expression at render time,
    under the render's budget."""


class RenderBudget:
    """The limits of one render and what it has spent so far."""

    __slots__ = ("_cpu_at_start", "_deadline", "_iterations", "_memory", "_over", "limits")

    def __init__(self, limits: TemplateBudget) -> None:
        self.limits = limits
        self._deadline = time.perf_counter() + limits.time_budget
        self._cpu_at_start = time.thread_time()
        self._iterations = 0
        self._memory = 0
        self._over: str | None = None

    @contextmanager
    def active(self) -> Iterator[RenderBudget]:
        """Make this the budget that the sandbox charges until the block ends."""
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)

    def check_time(self) -> None:
        """Raise OverBudget once the render has taken its time budget (or any limit is spent)."""
        if self._over is not None:
            raise OverBudget(self._over)
        if time.perf_counter() > self._deadline and not self._was_descheduled():
            millis = round(self.limits.time_budget * 1000)
            self.refuse(f"it ran over its time limit of {millis} ms ({_SETTING}TIME_BUDGET)")

    def _was_descheduled(self) -> bool:
        """Whether the render has used less CPU than its budget though its time is up (a busy
        machine ran something else meanwhile); then it gets the rest. The clock read on every
        check is the cheap wall clock; this thread's CPU clock costs fifteen times as much."""
        spent = time.thread_time() - self._cpu_at_start
        if spent >= self.limits.time_budget:
            return False
        self._deadline = time.perf_counter() + self.limits.time_budget - spent
        return True

    def tick(self) -> None:
        """Count one loop iteration (or one item taken by an item-by-item filter)."""
        self._iterations += 1
        if self._iterations > self.limits.max_iterations:
            limit = self.limits.max_iterations
            self.refuse(
                f"it ran over the limit of {limit:,} loop iterations ({_SETTING}MAX_ITERATIONS)"
            )
        self.check_time()

    def fits(self, size: int, what: str) -> None:
        """Refuse to build `what` if it would hold over `max_output` characters or items."""
        if size > self.limits.max_output:
            limit = self.limits.max_output
            self.refuse(
                f"{what} would hold {size:,} characters or items, over the limit of {limit:,} "
                f"({_SETTING}MAX_OUTPUT)"
            )

    def charge(self, value: V) -> V:
        """Count the bytes of `value` (with all it holds) against the memory budget."""
        self.check_time()
        if type(value) in _SCALARS:  # most values: no need to look inside
            self._memory += sys.getsizeof(value)
        else:
            left = self.limits.max_memory - self._memory
            self._memory += _measure(value, left, sys.getsizeof, self.check_time)
        if self._memory > self.limits.max_memory:
            limit = self.limits.max_memory
            self.refuse(
                f"it built over the limit of {limit:,} bytes of values ({_SETTING}MAX_MEMORY)"
            )
        return value

    def weight(self, value: object, limit: int) -> int:
        """Bytes of `value` with all it holds, once over `limit` no more exactly."""
        return _measure(value, limit, sys.getsizeof, self.check_time)

    def text_size(self, value: object) -> int:
        """Most characters str() gives for `value`, once over `max_output` no more exactly."""
        if isinstance(value, str):
            return len(value)
        return _measure(value, self.limits.max_output, _text_size, self.check_time)

    def repr_size(self, value: object) -> int:
        """Most characters repr() gives for `value`, once over `max_output` no more exactly."""
        return _measure(value, self.limits.max_output, _text_size, self.check_time)

    def metered(self, iterable: Iterable[V]) -> Metered[V]:
        """`iterable`, each item counted as a loop iteration."""
        if isinstance(iterable, Collection):
            return SizedMetered(iterable, self)
        return Metered(iterable, self)

    def fits_iterations(self, count: int, what: str) -> None:
        """Refuse `what` if it would take over `max_iterations` items."""
        if count > self.limits.max_iterations:
            limit = self.limits.max_iterations
            self.refuse(
                f"{what} would take {count:,} items, over the limit of {limit:,} loop iterations "
                f"({_SETTING}MAX_ITERATIONS)"
            )

    def refuse(self, reason: str) -> NoReturn:
        """Stop the render for `reason` (which names the limit); every later check stops it too."""
        self._over = reason
        raise OverBudget(reason)


def current() -> RenderBudget:
    """The budget of the render under way."""
    budget = _ACTIVE.get()
    if budget is None:
        raise NoRenderUnderWay("no template is being rendered")
    return budget


class Metered(Iterator[V]):
    """An iterator that counts each item it gives against the render's loop iterations; as
    truthy as a generator, so that filters testing `if value:` behave as for one."""

    __slots__ = ("_budget", "_items")

    def __init__(self, iterable: Iterable[V], budget: RenderBudget) -> None:
        self._items = iter(iterable)
        self._budget = budget

    def __iter__(self) -> Metered[V]:
        return self

    def __next__(self) -> V:
        self._budget.tick()
        return next(self._items)


class SizedMetered(Metered[V]):
    """Metered over a sized collection: as long, and as truthy, as the collection."""

    __slots__ = ("_length",)

    def __init__(self, collection: Collection[V], budget: RenderBudget) -> None:
        super().__init__(collection, budget)
        self._length = len(collection)

    def __len__(self) -> int:
        # Jinja's `loop.length` asks len() before counting by taking every item.
        return self._length


_SCALARS = frozenset({str, bytes, int, float, bool, type(None), Markup})
_DICT_VIEWS = frozenset({type({}.keys()), type({}.values()), type({}.items())})
_CHECK_EVERY = 4096
"""Values measured between two looks at the clock: a few milliseconds' work."""


def _children(item: object) -> Iterable[object] | None:
    """What a container holds (a dict: its keys and values); None for anything else."""
    if isinstance(item, dict):
        return (part for pair in item.items() for part in pair)
    if isinstance(item, list | tuple | set | frozenset):
        return item
    if type(item) in _DICT_VIEWS:
        return (item.mapping,)  # type: ignore[attr-defined]
    return None


def _measure(
    value: object, limit: int, size_of: Callable[[object], int], check: Callable[[], None]
) -> int:
    """Sum of `size_of` over `value` and everything it holds, counting a value held twice twice
    (as printing, hashing or comparing it does); stops once the sum is over `limit`, and calls
    `check` (the clock) as it goes."""
    total = 0
    pending = [value]
    measured = 0
    while pending and total <= limit:
        item = pending.pop()
        total += size_of(item)
        if type(item) not in _SCALARS and total <= limit:
            children = _children(item)
            if children is not None:
                pending.extend(children)
        measured += 1
        if measured % _CHECK_EVERY == 0:
            check()
    return total


def _text_size(item: object) -> int:
    """Most characters `repr` gives for `item` itself, plus its separator in a container."""
    if isinstance(item, str):
        if item.isprintable():
            return len(item) + item.count("\\") + item.count("'") + 4
        return 10 * len(item) + 4  # escapes such as \U000e0001
    if isinstance(item, bytes):
        return 4 * len(item) + 5
    if isinstance(item, int):
        return item.bit_length() // 3 + 4
    if _children(item) is not None:
        return 24  # brackets, a type name (frozenset, dict_items), separators
    return 64  # a float, None, Jinja's own objects: a short repr


_PRINTF_FIELD = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_FORMAT_SPEC = re.compile(r"(\d*)[,_]?(?:\.(\d+))?[a-zA-Z%]?$")
_MAX_DIGITS = 9
"""Longest width or precision read as a number: anything longer is over any limit."""


def _number(digits: str | None) -> int:
    if not digits:
        return 0
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS


def printf_size(budget: RenderBudget, template: str | bytes, values: object) -> int:
    """Most characters `template % values` gives: its text, each field's width and precision
    (a `*` taken as the largest number given) and the text of every value."""
    if isinstance(template, bytes):
        template = template.decode("latin-1")
    if isinstance(values, dict):
        items = list(values.values())
    else:
        items = list(values) if isinstance(values, tuple) else [values]
    star = max((abs(item) for item in items if isinstance(item, int)), default=0)
    size = len(template)
    for field in _PRINTF_FIELD.finditer(template):
        size += sum(star if part == "*" else _number(part) for part in field.groups())
    return size + sum(budget.text_size(item) for item in items)


def format_spec_size(spec: str) -> int:
    """The larger of the width and the precision in a str.format() field's spec."""
    match = _FORMAT_SPEC.search(spec)
    return max(_number(match.group(1)), _number(match.group(2))) if match else 0
