"""Jinja's filters and globals under the render budget.

Every filter checks the clock and is charged for what it returns; a filter that takes items one
by one takes them through a metered iterator; those that can build far more than they are given
(a width, a count, a separator repeated per item) are replaced by versions that work out the size
first and refuse before building it.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from itertools import chain
from typing import Any

from jinja2 import filters as jinja_filters
from jinja2.constants import LOREM_IPSUM_WORDS
from jinja2.filters import make_attrgetter
from jinja2.nodes import EvalContext
from jinja2.utils import (
    generate_lorem_ipsum,
    htmlsafe_json_dumps,
    pass_environment,
    pass_eval_context,
)
from markupsafe import Markup

from hookline.channels.template_budget import (
    RenderBudget,
    current,
    printf_size,
)

Filter = Callable[..., Any]

_ITEM_BY_ITEM = frozenset(
    {"batch", "first", "groupby", "join", "list", "map", "max", "min", "reject"}
    | {"rejectattr", "select", "selectattr", "slice", "sort", "sum", "unique"}
)
"""Filters that take their first argument item by item (each item is a loop iteration)."""

_SLOW_TEXT_SHARE = 8
"""urlize and wordwrap run Python code per word: they take at most this share of max_output,
so one call stays well inside the time budget (which can only be checked between calls)."""
_LONGEST_LOREM_WORD = max(map(len, LOREM_IPSUM_WORDS.split())) + 2  # with "," or "." and " "
_MAX_JSON_INDENT = 32
"""Widest `tojson` indent: each line holds the indent once per level of nesting."""


def budgeted_filters(filters: Mapping[str, Filter]) -> dict[str, Filter]:
    """`filters` with the bounded versions in, each checked and charged by the render budget."""
    replaced = {**filters, **_BOUNDED}
    return {name: _budgeted(func, name in _ITEM_BY_ITEM) for name, func in replaced.items()}


def _budgeted(func: Filter, item_by_item: bool) -> Filter:
    # Filters marked pass_context (or eval context, environment) get that first.
    at = 0 if getattr(func, "jinja_pass_arg", None) is None else 1

    @functools.wraps(func)  # keeps the pass_* marks Jinja reads
    def budgeted(*args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.check_time()
        if item_by_item and len(args) > at:
            args = (*args[:at], budget.metered(args[at]), *args[at + 1 :])
        return budget.charge(func(*args, **kwargs))

    return budgeted


def text_of(budget: RenderBudget, value: Any) -> str:
    """`value` as text (Markup stays Markup), refused first if it would be over max_output."""
    if isinstance(value, str):
        return value
    budget.fits(budget.text_size(value), "a value shown as text")
    return str(value)


def replaced_size(text: str | bytes, old: Any, new: Any, count: Any) -> int:
    """Most characters `text.replace(old, new, count)` gives (its own length if the arguments
    are of the wrong type, which replace() refuses)."""
    if type(old) is not type(new) or not isinstance(old, str | bytes):
        return len(text)
    found = len(text) + 1 if not old else text.count(old)  # type: ignore[arg-type]
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * max(len(new) - len(old), 0)


def center(value: Any, width: int = 80) -> str:
    """`center`, refused if `width` is over max_output."""
    budget = current()
    if isinstance(width, int):
        budget.fits(width, "center()")
    return jinja_filters.do_center(text_of(budget, value), width)


def indent(s: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    """`indent`, refused if the indent times the lines would be over max_output."""
    budget = current()
    text = text_of(budget, s)
    unit = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    budget.fits(unit, "indent()'s width")
    budget.fits(len(text) + len(text.splitlines()) * (unit + 1) + unit, "indent()")
    return jinja_filters.do_indent(s, width, first, blank)


def format_(value: Any, *args: Any, **kwargs: Any) -> str:
    """`format`, refused if its widths and values would be over max_output."""
    budget = current()
    text = text_of(budget, value)
    budget.fits(printf_size(budget, text, kwargs or args), "format()")
    return jinja_filters.do_format(text, *args, **kwargs)


@pass_environment
def wordwrap(
    environment: Any,
    s: Any,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> str:
    """`wordwrap`, refused for long text or if the separators would be over max_output."""
    budget = current()
    text = text_of(budget, s)
    _slow_text(budget, text, "wordwrap()")
    separator = environment.newline_sequence if wrapstring is None else wrapstring
    if isinstance(width, int) and width > 0 and isinstance(separator, str):
        # Two lines in a row hold over `width` characters, or the first would take a word more.
        lines = 2 * (len(text) // width) + 2 * len(text.splitlines()) + 1
        budget.fits(len(text) + lines * len(separator), "wordwrap()")
    return jinja_filters.do_wordwrap(
        environment, s, width, break_long_words, wrapstring, break_on_hyphens
    )


def _slow_text(budget: RenderBudget, text: str, what: str) -> None:
    limit = budget.limits.max_output // _SLOW_TEXT_SHARE
    if len(text) > limit:
        budget.refuse(
            f"{what}'s text of {len(text):,} characters is over the limit of {limit:,} "
            "(an eighth of HOOKLINE_TEMPLATE_MAX_OUTPUT)"
        )


@pass_eval_context
def urlize(eval_ctx: EvalContext, value: Any, *args: Any, **kwargs: Any) -> str:
    """`urlize`, refused for long text."""
    budget = current()
    text = text_of(budget, value)
    _slow_text(budget, text, "urlize()")
    return jinja_filters.do_urlize(eval_ctx, text, *args, **kwargs)


@pass_eval_context
def replace(eval_ctx: EvalContext, s: Any, old: Any, new: Any, count: int | None = None) -> str:
    """`replace`, refused if the result would be over max_output."""
    budget = current()
    text = text_of(budget, s)
    budget.fits(replaced_size(text, str(old), str(new), count), "replace()")
    return jinja_filters.do_replace(eval_ctx, text, old, new, count)


@pass_eval_context
def join(eval_ctx: EvalContext, value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    """`join`, refused if the items and separators would be over max_output."""
    budget = current()
    if attribute is not None:
        value = map(make_attrgetter(eval_ctx.environment, attribute), value)
    items = [text_of(budget, item) for item in value]
    separator = text_of(budget, d)
    size = sum(map(len, items)) + len(separator) * max(len(items) - 1, 0)
    budget.fits(size, "join()")
    return jinja_filters.sync_do_join(eval_ctx, items, separator)


@pass_environment
def sum_(environment: Any, iterable: Iterable[Any], attribute: Any = None, start: Any = 0) -> Any:
    """`sum`; lists and tuples are chained in one step (adding them pairwise takes time that
    grows with the square of their count), refused if the result would be over max_output."""
    budget = current()
    if attribute is not None:
        iterable = map(make_attrgetter(environment, attribute), iterable)
    if not isinstance(start, list | tuple):
        return sum(iterable, start)
    items = list(iterable)
    if not all(isinstance(item, type(start)) for item in items):
        raise TypeError(f"can only add {type(start).__name__}s to a {type(start).__name__}")
    budget.fits(len(start) + sum(map(len, items)), "sum()")
    return type(start)(chain(start, *items))


def batch(value: Iterable[Any], linecount: int, fill_with: Any = None) -> Any:
    """`batch`, refused if a batch would be over max_output items."""
    current().fits(linecount if isinstance(linecount, int) else 0, "batch()")
    return jinja_filters.do_batch(value, linecount, fill_with)


def slice_(value: Iterable[Any], slices: int, fill_with: Any = None) -> Any:
    """`slice`, refused for over max_output slices."""
    current().fits(slices if isinstance(slices, int) else 0, "slice()")
    return jinja_filters.sync_do_slice(list(value), slices, fill_with)


@pass_eval_context
def tojson(eval_ctx: EvalContext, value: Any, indent: int | str | None = None) -> Markup:
    """`tojson`: output over max_output is refused as it is written, before it is all built."""
    budget = current()
    width = len(indent) if isinstance(indent, str) else indent or 0
    if not isinstance(width, int) or width > _MAX_JSON_INDENT:
        budget.refuse(f"tojson()'s indent is over the limit of {_MAX_JSON_INDENT} spaces")
    options = {**eval_ctx.environment.policies["json.dumps_kwargs"], "indent": indent}
    return htmlsafe_json_dumps(value, dumps=functools.partial(_bounded_json, budget), **options)


def _bounded_json(budget: RenderBudget, value: Any, **options: Any) -> str:
    # JSON is at most six characters for each byte of what it encodes: small values go to the
    # fast encoder at once, others are encoded piece by piece up to the limit.
    limit = budget.limits.max_output
    if options.get("indent") is None and 6 * budget.weight(value, limit) <= limit:
        return json.dumps(value, **options)
    pieces, size = [], 0
    for piece in json.JSONEncoder(**options).iterencode(value):
        size += len(piece)
        budget.fits(size, "tojson()")
        budget.check_time()
        pieces.append(piece)
    return "".join(pieces)


def pprint(value: Any) -> str:
    """`pprint`, refused if the value would print over max_output characters."""
    budget = current()
    budget.fits(budget.text_size(value), "pprint()")
    return jinja_filters.do_pprint(value)


def lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    """The `lipsum` global, refused if its longest text would be over max_output."""
    if isinstance(n, int) and isinstance(max, int):
        paragraphs, words = n if n > 0 else 0, max if max > 0 else 0
        size = paragraphs * (words * _LONGEST_LOREM_WORD + 16)
        current().fits(size, "lipsum()")
    return generate_lorem_ipsum(n, html, min, max)


def range_(*args: int) -> range:
    """The `range` global, refused for more numbers than the loop iterations allowed."""
    numbers = range(*args)
    try:
        count = len(numbers)
    except OverflowError:
        count = sys.maxsize
    current().fits_iterations(count, "range()")
    return numbers


_BOUNDED: dict[str, Filter] = {
    "batch": batch,
    "center": center,
    "format": format_,
    "indent": indent,
    "join": join,
    "pprint": pprint,
    "replace": replace,
    "slice": slice_,
    "sum": sum_,
    "tojson": tojson,
    "urlize": urlize,
    "wordwrap": wordwrap,
}

BOUNDED_GLOBALS: dict[str, Callable[..., Any]] = {"lipsum": lipsum, "range": range_}
