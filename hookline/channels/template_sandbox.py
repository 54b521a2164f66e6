"""Jinja's immutable sandbox with every operation that can spend time or memory under the render
budget (template_budget): operators, calls, `~`, slices, literals, output and loops.

Compiled templates call back into the environment for each of them: operators through the
sandbox's intercepted operators, calls through `call`, and the rest through a code generator
that wraps them (`for` loops take their items through a metered iterator, so nested loops stop
at the budget however few calls they make).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import update_wrapper
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, LoopContext, Undefined, markup_join
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)
from markupsafe import Markup

from hookline.channels.template_budget import (
    RenderBudget,
    current,
    format_spec_size,
    printf_size,
)
from hookline.channels.template_filters import (
    BOUNDED_GLOBALS,
    budgeted_filters,
    replaced_size,
    text_of,
)

_MAX_INT_BITS = 16_384
"""Largest integer a template may compute; Python will not print one over 4,300 digits."""
_PADDED = frozenset({"center", "ljust", "rjust", "zfill"})
_SHORT_TEXT = frozenset({int, float, bool, type(None)})
"""Values whose text is short (Python refuses to print an integer of over 4,300 digits)."""


class BudgetedCodeGenerator(CodeGenerator):
    """Writes template code that calls the environment for loops, `~`, slices and literals."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        # Jinja allows no node types of one's own: the loop takes `environment.metered(iter)`.
        metered = nodes.EnvironmentAttribute("metered", lineno=node.iter.lineno)
        node.iter = nodes.Call(metered, [node.iter], [], None, None, lineno=node.iter.lineno)
        super().visit_For(node, frame)

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            markup = "context.eval_ctx.autoescape"
        else:
            markup = str(bool(frame.eval_ctx.autoescape))
        self.write(f"environment.joined({markup}, (")
        for part in node.nodes:
            self.visit(part, frame)
            self.write(", ")
        self.write("))")

    def visit_Getitem(self, node: nodes.Getitem, frame: Frame) -> None:
        # A slice is a copy; an item is a value the template already holds.
        if isinstance(node.arg, nodes.Slice):
            self._wrapped("environment.charged", node, frame, super().visit_Getitem)
        else:
            super().visit_Getitem(node, frame)

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._wrapped("environment.charged", node, frame, super().visit_List)

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._wrapped("environment.charged", node, frame, super().visit_Dict)

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx == "store":  # a target such as `for key, value in ...`
            super().visit_Tuple(node, frame)
        else:
            self._wrapped("environment.charged", node, frame, super().visit_Tuple)

    def _wrapped(
        self,
        function: str,
        node: nodes.Node,
        frame: Frame,
        visit: Callable[[Any, Frame], None] | None = None,
    ) -> None:
        self.write(f"{function}(")
        (visit or self.visit)(node, frame)
        self.write(")")


class BudgetedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox under the budget of the render under way."""

    intercepted_binops = frozenset(SandboxedEnvironment.default_binop_table)
    intercepted_unops = frozenset(SandboxedEnvironment.default_unop_table)
    code_generator_class = BudgetedCodeGenerator

    def __init__(self, *, autoescape: bool, undefined: type[Undefined]) -> None:
        super().__init__(autoescape=autoescape, undefined=undefined, finalize=_printable)
        # Replaced in place: the environment's own mapping is what Jinja's compiled code reads.
        filters: dict[str, Any] = self.filters
        filters.update(budgeted_filters(filters))
        self.globals.update(BOUNDED_GLOBALS)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Work out the operator's result size first; charge the result."""
        budget = current()
        _check_operands(budget, operator, left, right)
        return budget.charge(self.binop_table[operator](left, right))

    def call_unop(self, context: Context, operator: str, arg: Any) -> Any:
        """Charge the result."""
        return current().charge(self.unop_table[operator](arg))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Check the clock and what a string method would build; charge the result."""
        budget = current()
        budget.check_time()
        if isinstance(__obj, LoopContext) and args:  # the next level of a recursive loop
            args = (budget.metered(args[0]), *args[1:])
        else:
            args = _checked_arguments(budget, __obj, args, kwargs)
        return budget.charge(super().call(__context, __obj, *args, **kwargs))

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        """Refuse at once, not when the value is used: a template tried at save is refused for
        it even though the sample event's undefined values print as nothing."""
        raise SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe."
        )

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """str.format and format_map with each field's width checked and result charged."""
        if not isinstance(value, types.MethodType | types.BuiltinMethodType) or (
            value.__name__ not in ("format", "format_map")
        ):
            return None
        text = value.__self__
        if not isinstance(text, str):
            return None
        formatter: SandboxedFormatter = (
            _BoundedEscapeFormatter(self, escape=text.escape)  # Markup escapes what it formats
            if isinstance(text, Markup)
            else _BoundedFormatter(self)
        )
        return update_wrapper(_formatting(text, formatter, value.__name__), value)

    def concat(self, pieces: Iterable[str]) -> str:
        """The text of a render, macro or block, refused once it is over max_output."""
        budget = current()
        limit = budget.limits.max_output
        kept: list[str] = []
        size = 0
        for piece in pieces:
            size += len(piece)
            if size > limit:
                budget.fits(size, "the rendered text")
            kept.append(piece)
        return budget.charge("".join(kept))

    def joined(self, markup: bool, values: tuple[Any, ...]) -> str:
        """`a ~ b`, refused if it would be over max_output."""
        budget = current()
        texts = [text_of(budget, value) for value in values]
        budget.fits(sum(map(len, texts)), "a ~ concatenation")
        return budget.charge(markup_join(texts) if markup else "".join(texts))

    def metered(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """A loop's items, each counted as an iteration."""
        return current().metered(iterable)

    def charged(self, value: Any) -> Any:
        """`value` (a literal, a slice), charged to the render budget."""
        return current().charge(value)


def _printable(value: Any) -> Any:
    """What `{{ value }}` prints: a container is refused first if its text would be too long."""
    if type(value) not in _SHORT_TEXT and not isinstance(value, str):
        budget = current()
        budget.fits(budget.text_size(value), "a value shown as text")
    return value


def _check_operands(budget: RenderBudget, operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        _check_product(budget, left, right)
    elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
        _check_bits(budget, abs(left).bit_length() * right if abs(left) > 1 else 0)
    elif operator == "+" and _is_sequence(left) and _is_sequence(right):
        budget.fits(len(left) + len(right), "the result of +")
    elif operator == "%" and isinstance(left, str | bytes):
        budget.fits(printf_size(budget, left, right), "the result of %")


def _is_sequence(value: Any) -> bool:
    return isinstance(value, str | bytes | list | tuple)


def _check_product(budget: RenderBudget, left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        _check_bits(budget, left.bit_length() + right.bit_length())
    for sequence, count in ((left, right), (right, left)):
        if _is_sequence(sequence) and isinstance(count, int):
            budget.fits(len(sequence) * count, "the result of *")


def _check_bits(budget: RenderBudget, bits: int) -> None:
    if bits > _MAX_INT_BITS:
        budget.refuse(f"a number would be over the limit of {_MAX_INT_BITS:,} bits")


def _checked_arguments(
    budget: RenderBudget, method: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[Any, ...]:
    """`args` for `method`, refused first where a string method would build too much; the
    iterable given to join() comes back as the list of its items."""
    receiver = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    if isinstance(receiver, int) and name == "to_bytes":
        budget.fits(_argument(args, kwargs, 0, "length", 1), "to_bytes()")
    if not isinstance(receiver, str | bytes):
        return args
    if name in _PADDED:
        budget.fits(_argument(args, kwargs, 0, "width", 0), f"{name}()")
    elif name == "expandtabs":
        tabs = receiver.count("\t") if isinstance(receiver, str) else receiver.count(b"\t")
        tabsize = _argument(args, kwargs, 0, "tabsize", 8)
        budget.fits(len(receiver) + tabs * tabsize, "expandtabs()")
    elif name == "replace" and len(args) >= 2:
        count = _argument(args, kwargs, 2, "count", -1)
        budget.fits(replaced_size(receiver, args[0], args[1], count), "replace()")
    elif name == "join" and args:
        items = list(budget.metered(args[0]))
        sizes = sum(len(item) for item in items if isinstance(item, str | bytes))
        budget.fits(sizes + len(receiver) * max(len(items) - 1, 0), "join()")
        return (items, *args[1:])
    elif name == "translate" and isinstance(receiver, str) and args:
        budget.fits(len(receiver) * _longest_replacement(args[0]), "translate()")
    return args


def _argument(
    args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str, default: int
) -> int:
    """An integer argument given by position or name; 0 if it is not an integer (the method
    itself then refuses it)."""
    value = args[index] if len(args) > index else kwargs.get(name, default)
    return value if isinstance(value, int) else 0


def _longest_replacement(table: Any) -> int:
    values = table.values() if isinstance(table, Mapping) else table
    if not isinstance(values, Iterable) or isinstance(values, str):
        return 1
    return max((len(value) for value in values if isinstance(value, str)), default=1)


def _formatting(text: str, formatter: SandboxedFormatter, name: str) -> Callable[..., str]:
    """`text.format` (or `format_map`) through `formatter`, as Jinja's sandbox calls it."""

    def format_text(*args: Any, **kwargs: Any) -> str:
        if name == "format_map":
            if kwargs or len(args) != 1:
                raise TypeError("format_map() takes exactly one argument")
            return type(text)(formatter.vformat(text, (), args[0]))
        return type(text)(formatter.vformat(text, args, kwargs))

    return format_text


class _BoundedFormatter(SandboxedFormatter):
    """Refuses a field whose width, precision or repr() is over max_output; charges each."""

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion is not None:  # !r, !a: a string's repr may be ten times as long
            budget = current()
            budget.fits(budget.repr_size(value), "a format() field")
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        budget = current()
        budget.fits(format_spec_size(format_spec), "a format() field")
        if not isinstance(value, str):
            budget.fits(budget.text_size(value), "a format() field")
        return budget.charge(super().format_field(value, format_spec))


class _BoundedEscapeFormatter(_BoundedFormatter, SandboxedEscapeFormatter):
    """The bounded formatter for Markup: escapes each field as Markup.format does."""
