"""``tasker generate subscriber|task-handler|events``: scaffold code that passes ruff, mypy and its own tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from tasker.cli.common import friendly_errors

if TYPE_CHECKING:
    # mypy reads the source tree, where the package is the top-level generators/ folder.
    import generators as gen
else:
    import tasker.generators as gen


def _report(generation: gen.Generation, force: bool) -> None:
    for written in gen.write_files(generation.files, force=force):
        click.echo(f"{written.action:<11} {gen.core.display(written.path)}")
    for note in generation.notes:
        click.echo(note)


@click.group()
def generate() -> None:
    """Scaffold subscribers, task handlers and custom events.

    Every generator writes annotated code that passes `ruff check`, plus a test that runs it on a real
    Tasker app (SQLite). With tasker installed from a wheel (mypy cannot see an editable install),
    `mypy --strict --explicit-package-bases .` passes on the generated project as generated.
    Paths are relative to the current directory (the project root);
    existing files are never overwritten without --force. A root conftest.py is added when missing so
    that `pytest` can import the project's modules.

    \b
    Example:
      tasker generate subscriber order_alerts --events task.completed,step.failed
      tasker generate task-handler order_process --steps validate,charge,ship
      tasker generate events
    """


@generate.command("subscriber")
@click.argument("name")
@click.option(
    "--events",
    "events",
    multiple=True,
    metavar="NAMES",
    help="Comma-separated event names (repeatable). Default: task.completed,task.failed; "
    "with --metrics: task.completed,task.failed,step.completed,step.failed.",
)
@click.option("--metrics", is_flag=True, help="Record business metrics in the app's Prometheus registry.")
@click.option("--directory", default="subscribers", show_default=True, help="Where the subscriber module goes.")
@click.option("--tests-directory", default="tests/subscribers", show_default=True, help="Where its test goes.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@friendly_errors
def generate_subscriber(
    name: str, events: tuple[str, ...], metrics: bool, directory: str, tests_directory: str, force: bool
) -> None:
    """Generate a BaseSubscriber subclass NAME with one handler per event, and its test.

    NAME is snake_case or CamelCase (order_alerts, OrderAlerts). Each `handle_<event>` method's docstring
    lists the payload fields the event carries; every handled event is kept in `self.handled`. Unknown
    event names are refused with the closest matches (`tasker events list` shows them all).

    With --metrics the subscriber takes `app.metrics` and records `<name>_completions_total{event}`,
    `<name>_errors_total{event,error_type}` (error_type: timeout, network, ..., other) and the histogram
    `<name>_duration_seconds{event}`.

    \b
    Files:
      DIRECTORY/<name>_subscriber.py              class <Name>Subscriber(BaseSubscriber)
      TESTS_DIRECTORY/test_<name>_subscriber.py   publishes each event's example payload through
                                                  a real app and checks its handler ran
      conftest.py                                 only when missing

    \b
    Example:
      tasker generate subscriber order_alerts --events task.completed,step.failed
      tasker generate subscriber order_metrics --metrics
      python -m pytest tests/subscribers
    """
    generation = gen.subscriber_files(
        name,
        gen.core.split_list(events),
        metrics=metrics,
        directory=directory,
        tests_directory=tests_directory,
    )
    _report(generation, force)


@generate.command("task-handler")
@click.argument("name")
@click.option("--namespace", default="default", show_default=True, help="Namespace of the task template.")
@click.option("--version", default="0.1.0", show_default=True, help="Version of the task template (semver).")
@click.option(
    "--steps",
    multiple=True,
    metavar="NAMES",
    help="Comma-separated step names, run in this order (repeatable). Default: fetch_data,process_data,complete_task.",
)
@click.option("--description", default=None, help="Description of the task template.")
@click.option("--directory", default=".", show_default=True, help="Project root to generate into.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@friendly_errors
def generate_task_handler(
    name: str,
    namespace: str,
    version: str,
    steps: tuple[str, ...],
    description: str | None,
    directory: str,
    force: bool,
) -> None:
    """Generate a task template NAME, one step handler per step, and a test that runs it.

    Each step depends on the previous one and receives its results. The template's context schema
    requires an integer `input_id`. `handler_class` paths are importable from DIRECTORY, where the
    generated conftest.py puts pytest (`python -m pytest` from there works too).

    \b
    Files:
      DIRECTORY/config/tasks/<name>.yaml   the template (handler_class <name>.handlers:<Step>Handler)
      DIRECTORY/<name>/__init__.py
      DIRECTORY/<name>/handlers.py         one StepHandler subclass per step
      DIRECTORY/tests/test_<name>.py       registers the YAML, runs a task on SQLite to completion
      DIRECTORY/conftest.py                only when missing

    \b
    Example:
      tasker generate task-handler order_process --namespace ecommerce --steps validate,charge,ship
      python -m pytest tests/test_order_process.py
      tasker graph config/tasks/order_process.yaml
    """
    generation = gen.task_handler_files(
        name,
        namespace=namespace,
        version=version,
        steps=gen.core.split_list(steps),
        description=description,
        directory=directory,
    )
    _report(generation, force)


@generate.command("events")
@click.option("--directory", default="config/events", show_default=True, help="Where the custom events YAML goes.")
@click.option("--subscribers-directory", default="subscribers", show_default=True, help="Where the subscriber goes.")
@click.option("--tests-directory", default="tests/subscribers", show_default=True, help="Where its test goes.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@friendly_errors
def generate_events(directory: str, subscribers_directory: str, tests_directory: str, force: bool) -> None:
    """Generate example custom events in YAML and a subscriber that handles them.

    The YAML defines order.processed, payment.completed and notification.sent (description, fired_by,
    payload_schema) in the shape `app.events.load_custom_events` reads. Edit it to declare your own
    events; step handlers publish them with `self.publish_event(name, payload)`.

    \b
    Files:
      DIRECTORY/custom_events.yaml
      SUBSCRIBERS_DIRECTORY/custom_events_subscriber.py
      TESTS_DIRECTORY/test_custom_events_subscriber.py
      conftest.py                                        only when missing

    \b
    Example:
      tasker generate events
      tasker events list --events-file config/events/custom_events.yaml
    """
    generation = gen.custom_events_files(
        directory=directory, subscribers_directory=subscribers_directory, tests_directory=tests_directory
    )
    _report(generation, force)


@generate.command("authenticator")
@click.argument("name")
@click.option("--directory", default="auth", show_default=True, help="Where the authenticator module goes.")
@click.option("--tests-directory", default="tests/auth", show_default=True, help="Where its test goes.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@friendly_errors
def generate_authenticator(name: str, directory: str, tests_directory: str, force: bool) -> None:
    """Generate an API authenticator NAME for `tasker serve` (API keys with roles), and its test.

    The class subclasses tasker.web.Auth: `authenticate(request)` maps a bearer key to a principal,
    `authorize(principal, resource, action)` checks the principal's role. Keys come from the
    environment variable <NAME>_API_KEYS (`key=viewer,key2=operator`).

    \b
    Files:
      DIRECTORY/<name>_authenticator.py              class <Name>Authenticator(Auth)
      TESTS_DIRECTORY/test_<name>_authenticator.py   401/403 and roles through the real API
      conftest.py                                    only when missing

    \b
    Example:
      tasker generate authenticator partner_api
      python -m pytest tests/auth
    """
    _report(gen.authenticator_files(name, directory=directory, tests_directory=tests_directory), force)
