"""A terminal waterfall of finished spans (e.g. an in-memory exporter's), bars drawn to scale.

Children are indented under their parent; tasker's spans are labelled ``enqueue``, ``task <name>`` and
``step <name> #<attempt>``, other spans by their name; ``ascii=True`` draws with ``#`` and ``.``::

    trace 5bdf272f3c30057019320b24afe19f1f  4 spans  98.6 ms
    enqueue                  |#...................|    0.0 ms
      task order_process     |.###################|   93.0 ms
        step validate #1     |..####..............|   29.7 ms
        step charge #1       |......############..|   45.9 ms  ERROR gateway timeout
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

_MAX_LABEL = 48


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _label(span: ReadableSpan) -> str:
    attributes = span.attributes or {}
    if span.name == "tasker.step.execution" and "tasker.step.name" in attributes:
        step, attempt = _text(attributes["tasker.step.name"]), _text(attributes.get("tasker.step.attempt", "?"))
        return f"step {step} #{attempt}"
    if span.name == "tasker.task.execution" and "tasker.task.name" in attributes:
        return f"task {_text(attributes['tasker.task.name'])}"
    if span.name == "tasker.task.enqueue":
        return "enqueue"
    return span.name


def _duration(nanoseconds: int) -> str:
    seconds = nanoseconds / 1e9
    if seconds >= 10:
        return f"{seconds:.1f} s"
    return f"{seconds * 1000:.1f} ms"


def _ordered(spans: Sequence[ReadableSpan]) -> list[tuple[int, ReadableSpan]]:
    """(depth, span) in tree order: children after their parent, siblings by start time."""
    ids = {span.context.span_id for span in spans if span.context is not None}
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        parent = span.parent.span_id if span.parent is not None and span.parent.span_id in ids else None
        children.setdefault(parent, []).append(span)
    for group in children.values():
        group.sort(key=lambda s: (s.start_time or 0, s.end_time or 0))
    out: list[tuple[int, ReadableSpan]] = []
    stack: list[tuple[int, ReadableSpan]] = [(0, s) for s in reversed(children.get(None, []))]
    while stack:
        depth, span = stack.pop()
        out.append((depth, span))
        span_id = span.context.span_id if span.context is not None else None
        stack.extend((depth + 1, child) for child in reversed(children.get(span_id, [])))
    return out


def _fit(text: str, width: int | None) -> str:
    return text if width is None or len(text) <= width else text[: max(width - 1, 0)] + "…"


def render_waterfall(
    spans: Iterable[ReadableSpan], width: int = 60, *, ascii: bool = False, line_width: int | None = None
) -> str:
    """Render ``spans`` as one waterfall per trace: indented names, bars to scale, durations, errors.

    ``width`` is the bar's; a failed span's row ends with ``ERROR`` and the first line of its status
    message. With ``line_width``, what does not fit on the row goes on the next line, cut to that width.
    """
    width = max(width, 10)
    full, empty = ("#", ".") if ascii else ("█", " ")
    by_trace: dict[int, list[ReadableSpan]] = {}
    for span in spans:
        if span.context is not None and span.start_time is not None:
            by_trace.setdefault(span.context.trace_id, []).append(span)
    if not by_trace:
        return "(no spans)"
    blocks: list[str] = []
    for trace_id, group in sorted(by_trace.items(), key=lambda item: min(s.start_time or 0 for s in item[1])):
        rows = _ordered(group)
        t0 = min(s.start_time or 0 for s in group)
        t1 = max((s.end_time or s.start_time or 0) for s in group)
        scale = width / max(t1 - t0, 1)
        labels = [("  " * depth + _label(span))[:_MAX_LABEL] for depth, span in rows]
        label_width = max(len(label) for label in labels)
        lines = [f"trace {trace_id:032x}  {len(group)} spans  {_duration(t1 - t0)}"]
        for label, (_, span) in zip(labels, rows, strict=True):
            start = span.start_time or t0
            end = span.end_time or start
            first = min(int((start - t0) * scale), width - 1)
            last = max(first + 1, min(round((end - t0) * scale), width))
            bar = empty * first + full * (last - first) + empty * (width - last)
            error = ""
            if span.status.status_code is StatusCode.ERROR:
                message = (span.status.description or "").strip().splitlines()
                error = f"  ERROR {message[0]}" if message else "  ERROR"
            links = f"  (linked to trace {span.links[0].context.trace_id:032x})" if span.links else ""
            line = f"{label:<{label_width}} |{bar}| {_duration(end - start):>9}"
            if line_width is None or len(line + error + links) <= line_width:
                lines.append(line + error + links)
            else:
                indent = " " * (label_width + 2)
                lines += [line, *(_fit(indent + text.strip(), line_width) for text in (error, links) if text)]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
