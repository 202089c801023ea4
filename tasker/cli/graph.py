"""``tasker graph TEMPLATE``: a template's step DAG as Mermaid or Graphviz DOT, with levels, roots and leaves."""

from __future__ import annotations

import click

from tasker.cli.common import fail, friendly_errors
from tasker.templates import TemplateGraph, load_templates


def render_graph(graph: TemplateGraph, fmt: str) -> str:
    """The diagram (level comments, edges) followed by ``roots``/``leaves`` comments; raises on a cycle."""
    if fmt == "dot":
        text = graph.to_dot()
        body, closing = text.rstrip("\n").rsplit("\n", 1)
        summary = [f"    // roots: {', '.join(graph.roots)}", f"    // leaves: {', '.join(graph.leaves)}"]
        return "\n".join([body, *summary, closing]) + "\n"
    summary = [f"    %% roots: {', '.join(graph.roots)}", f"    %% leaves: {', '.join(graph.leaves)}"]
    return graph.to_mermaid() + "\n".join(summary) + "\n"


@click.command()
@click.argument("template", type=click.Path(exists=True))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "dot"]),
    default="mermaid",
    show_default=True,
    help="Diagram language.",
)
@friendly_errors
def graph(template: str, fmt: str) -> None:
    """Print the step dependency graph of TEMPLATE (a YAML file, or a directory of them).

    Mermaid output is `flowchart TD`, one `%% level N: ...` comment per level, then one
    `parent --> child` line per dependency, then `%% roots:` and `%% leaves:` comments (`//` comments
    in DOT). Handler classes are not imported, so a template whose handlers are not installed still
    graphs. A dependency cycle is an error naming the cycle, and nothing is drawn.

    \b
    Example:
      tasker graph examples/order/order_process.yaml
      tasker graph config/tasks/order_process.yaml --format dot | dot -Tsvg > order.svg
    """
    templates = load_templates(template, resolve_handlers=False)
    if not templates:
        fail(f"{template}: no *.yaml or *.yml task templates found")
    for number, tmpl in enumerate(templates):
        if len(templates) > 1:
            comment = "//" if fmt == "dot" else "%%"
            click.echo(("\n" if number else "") + f"{comment} {tmpl.full_name}")
        click.echo(render_graph(tmpl.graph(), fmt), nl=False)
