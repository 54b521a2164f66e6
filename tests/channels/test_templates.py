"""The template budget: a hostile template stops early and small; ordinary ones render as ever."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from typing import Any

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hookline.channels.templates import TemplateRenderer, template_context
from hookline.errors import DeliveryError
from hookline.schemas import Notification, delivery_id
from hookline.settings import TemplateBudget
from tests.channels.contract import CHANNEL
from tests.conftest import make_event, probing

PEAK_BYTES = 20 * 1024 * 1024
"""Most memory a refused render may take; each hostile case below takes far more unbounded."""
WITHIN_SECONDS = 1.0
"""Longest a refused render may take: ten time budgets, for a loaded machine."""

HOSTILE = {
    "center": '{{ "x"|center(40000000) }}',
    "ljust": '{{ "x".ljust(40000000) }}',
    "rjust": '{{ "x".rjust(40000000) }}',
    "zfill": '{{ "1".zfill(40000000) }}',
    "format filter": '{{ "%40000000s"|format("x") }}',
    "% operator": '{{ "%*s" % (40000000, "x") }}',
    "str.format": '{{ "{:>40000000}".format("x") }}',
    "indent": '{{ ("a\n" * 50000)|indent(800) }}',
    "wordwrap": '{{ ("a " * 50000)|wordwrap(1, wrapstring="-" * 1000) }}',
    "lipsum": "{{ lipsum(n=20000, min=100, max=101) }}",
    "batch": "{{ [1]|batch(5000000, 0)|list|length }}",
    "slice": "{{ [1]|slice(500000)|list|length }}",
    "tojson indent": '{{ {"a": 1}|tojson(20000000) }}',
    "replace filter": '{{ ("x" * 20000)|replace("x", "y" * 2000) }}',
    "str.replace": '{{ ("x" * 20000).replace("x", "y" * 2000) }}',
    "join filter": '{{ range(20000)|join("-" * 2000) }}',
    "str.join": '{{ ("-" * 2000).join(range(20000)|map("string")) }}',
    "expandtabs": '{{ ("\t" * 10000).expandtabs(4000) }}',
    "~ doubling": "{% set ns = namespace(s='x') %}{% for i in range(26) %}"
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "+ doubling": "{% set ns = namespace(s='x') %}{% for i in range(26) %}"
    "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
    "* of a list of lists": "{{ [[1] * 5000] * 5000 }}",
    "nested lists doubling": "{% set ns = namespace(a=[1]) %}{% for i in range(40) %}"
    "{% set ns.a = [ns.a, ns.a] %}{% endfor %}{{ ns.a|length }}",
    "squaring a number": "{% set ns = namespace(x=10) %}{% for i in range(20) %}"
    "{% set ns.x = ns.x * ns.x %}{% endfor %}{{ ns.x > 0 }}",
    "range in nested loops": "{% for a in range(3000) %}{% for b in range(3000) %}"
    "{% endfor %}{% endfor %}",
}


def notification(**data: Any) -> Notification:
    """A notification of an event holding `data`, for an HTTP channel."""
    event = make_event(**data)
    return Notification(
        event=event,
        webhook_id="wh_Templates01",
        webhook_name="Templates",
        channel=CHANNEL.validate_python(
            {"channel": "webhook", "configs": {"url": "https://hooks.example.com/in"}}
        ),
        delivery_id=delivery_id(event.event_id, "wh_Templates01", 0),
        attempt=1,
    )


@pytest.fixture
def renderer() -> TemplateRenderer:
    return TemplateRenderer(TemplateBudget())


async def refused(renderer: TemplateRenderer, source: str, **data: Any) -> tuple[str, float, int]:
    """Render `source`, which must be refused; its error, how long it took, its memory peak."""
    note = notification(**data)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(DeliveryError) as caught:
            await renderer.render(source, note, field="payload_template")
        took = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.retryable is False
    return caught.value.message, took, peak


@pytest.mark.alone
@pytest.mark.parametrize("source", list(HOSTILE.values()), ids=list(HOSTILE))
async def test_a_hostile_template_is_stopped_within_the_budget(
    renderer: TemplateRenderer, source: str
) -> None:
    message, took, peak = await refused(renderer, source)

    assert message.startswith("payload_template is over the template budget"), message
    assert "over the limit of" in message or "over its time limit of" in message
    assert peak < PEAK_BYTES, f"{peak:,} bytes"
    assert took < WITHIN_SECONDS, f"{took:.2f} s"


@pytest.mark.alone
async def test_nested_loops_over_event_data_stop_at_the_iteration_limit(
    renderer: TemplateRenderer,
) -> None:
    source = (
        "{% for a in range(event.data.n) %}{% for b in range(event.data.n) %}"
        "{% endfor %}{% endfor %}"
    )
    message, took, _ = await refused(renderer, source, n=3000)

    assert "HOOKLINE_TEMPLATE_MAX_ITERATIONS" in message or "TIME_BUDGET" in message
    assert took < 0.5


@pytest.mark.alone
async def test_renders_ready_together_let_the_event_loop_go_round_between_them(
    renderer: TemplateRenderer,
) -> None:
    source = HOSTILE["range in nested loops"]
    async with probing() as probe:
        await asyncio.sleep(0.05)
        renders = (
            renderer.render(source, notification(), field="payload_template") for _ in range(20)
        )
        results = await asyncio.gather(*renders, return_exceptions=True)

    assert all(isinstance(result, DeliveryError) for result in results), results
    assert probe.worst < 0.3, f"the event loop was held up for {probe.worst:.2f} s"


@pytest.mark.alone
async def test_a_slow_render_is_stopped_at_its_time_budget() -> None:
    renderer = TemplateRenderer(TemplateBudget(time_budget=0.02, max_iterations=10_000_000))
    source = "{% for a in range(3000) %}{% for b in range(3000) %}{% endfor %}{% endfor %}"

    message, took, _ = await refused(renderer, source)

    assert "over its time limit of 20 ms (HOOKLINE_TEMPLATE_TIME_BUDGET)" in message
    assert took < 0.5


@pytest.mark.alone
async def test_summing_lists_takes_time_in_proportion_to_their_items(
    renderer: TemplateRenderer,
) -> None:
    started = time.perf_counter()
    rendered = await renderer.render(
        "{{ ([[1]] * 40000)|sum(start=[])|length }}", notification(), field="payload_template"
    )

    assert rendered == "40000"
    assert time.perf_counter() - started < 0.5  # adding them pairwise copies 800 million items


async def test_output_over_the_limit_names_the_limit(renderer: TemplateRenderer) -> None:
    source = '{% for i in range(3) %}{{ "x" * 100000 }}{% endfor %}'

    message, _, _ = await refused(renderer, source)

    assert "over the limit of 262,144 (HOOKLINE_TEMPLATE_MAX_OUTPUT)" in message


async def test_a_template_with_too_much_syntax_is_refused_before_it_is_compiled(
    renderer: TemplateRenderer,
) -> None:
    message, took, _ = await refused(renderer, "{{ event.data.a.b.c.d.e.f }}" * 2000)

    assert "over the limit of 4,096 tokens of template syntax" in message
    assert "HOOKLINE_TEMPLATE_MAX_TOKENS" in message
    assert took < WITHIN_SECONDS


ORDINARY = [
    "{{ event.type }} for {{ webhook.name }} ({{ delivery.attempt }})",
    '{"items": [{% for item in event.data["items"] %}{"id": {{ item.id|tojson }}, '
    '"label": {{ (item.name ~ " #" ~ loop.index)|tojson }}}'
    '{{ "," if not loop.last }}{% endfor %}], "count": {{ event.data["items"]|length }}}',
    '{{ event.data|tojson }} {{ event.data|tojson(2) }} {{ event.data|dictsort|join(";") }}',
    '{{ event.data.note|center(30) }}|{{ "%-8s|%05d"|format("id", 42) }}|'
    '{{ "{:>10}|{:.2f}".format(event.data.note, 3.14159) }}|{{ "7".zfill(3) }}',
    "{{ event.data.note|wordwrap(10) }}|{{ event.data.note|indent(2, true) }}|"
    '{{ event.data.note|truncate(9) }}|{{ event.data.note|replace("o", "0") }}',
    '{{ event.data["items"]|map(attribute="name")|join(", ") }} '
    '{{ event.data["items"]|selectattr("id", "odd")|map(attribute="id")|list }} '
    '{{ event.data["items"]|sort(attribute="name", reverse=true)|first }} '
    '{{ event.data["items"]|map(attribute="id")|sum }} {{ [[1], [2, 3]]|sum(start=[]) }} '
    "{{ range(7)|batch(3, 0)|list }} {{ range(7)|slice(3)|list }} {{ (1, 2) + (3,) }}",
    "{% macro row(item) %}<{{ item.name|upper }}>{% endmacro %}"
    '{% for item in event.data["items"] %}{{ row(item) }}{% else %}none{% endfor %} '
    "{% set ns = namespace(total=0) %}{% for item in event.data['items'] %}"
    "{% set ns.total = ns.total + item.id * 2 %}{% endfor %}{{ ns.total }} "
    '{{ "a-b-c".split("-")|reverse|join }} {{ event.data.note[:5] }} {{ 2 ** 10 }} {{ -7 // 2 }}',
]


@pytest.mark.parametrize("source", ORDINARY)
async def test_ordinary_templates_render_as_plain_jinja_renders_them(
    renderer: TemplateRenderer, source: str
) -> None:
    items = [{"id": n, "name": f"item {n}"} for n in range(1, 40)]
    note = notification(items=items, note="Hello world, one two three")
    plain = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)

    rendered = await renderer.render(source, note, field="payload_template")

    assert rendered == plain.from_string(source).render(template_context(note))


async def test_an_html_body_escapes_event_data_and_a_text_one_does_not(
    renderer: TemplateRenderer,
) -> None:
    note = notification(name="<script>x</script>")
    source = "<p>{{ event.data.name }}</p>{{ event.data.name|tojson }}{{ '<br>'|safe }}"

    html = await renderer.render(source, note, field="body_template", html=True)
    text = await renderer.render(source, note, field="body_template")

    assert html == (
        '<p>&lt;script&gt;x&lt;/script&gt;</p>"\\u003cscript\\u003ex\\u003c/script\\u003e"<br>'
    )
    assert text.startswith("<p><script>x</script></p>")
