"""prometheus_client multiprocess mode: aggregation across worker processes and stale-file cleanup.

When ``PROMETHEUS_MULTIPROC_DIR`` is set *before prometheus_client is imported*, every process writes its
metric values to mmap files in that directory; a scrape then builds a fresh registry with a
``MultiProcessCollector`` that merges all files. The live* gauge files of a process must be removed when it
exits (gunicorn's ``child_exit`` hook, Celery's ``worker_process_shutdown`` signal; see ``docs/metrics.md``).
"""

from __future__ import annotations

import glob
import logging
import os
import re
from collections.abc import Callable
from typing import cast

from prometheus_client import CollectorRegistry, values
from prometheus_client import multiprocess as _prom_multiprocess

from tasker.errors import MetricsError

logger = logging.getLogger(__name__)

# prometheus_client leaves these unannotated.
_MultiProcessCollector = cast(Callable[..., object], _prom_multiprocess.MultiProcessCollector)
_mark_process_dead = cast(Callable[[int, str], None], _prom_multiprocess.mark_process_dead)

#: The environment variable that switches prometheus_client into multiprocess mode.
ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"

# Only live* gauge files describe a process's *current* state; counter and histogram files of dead
# processes must stay so totals never go backwards.
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")


def multiprocess_dir() -> str | None:
    """The multiprocess directory from ``PROMETHEUS_MULTIPROC_DIR``, or None outside multiprocess mode."""
    return os.environ.get(ENV_VAR) or None


def values_are_multiprocess() -> bool:
    """Whether this process's metric values are mmap files (the env var was set before import)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


def _directory(directory: str | None, caller: str) -> str:
    path = directory or multiprocess_dir()
    if path is None:
        raise MetricsError(f"{caller} needs a directory or the {ENV_VAR} environment variable")
    return path


def multiprocess_registry(directory: str | None = None) -> CollectorRegistry:
    """A fresh registry that merges every process's files in ``directory`` (default: the env var)."""
    path = _directory(directory, "multiprocess_registry")
    if not os.path.isdir(path):
        raise MetricsError(f"multiprocess metrics directory {path!r} does not exist")
    registry = CollectorRegistry()
    _MultiProcessCollector(registry, path=path)
    return registry


def mark_process_dead(pid: int, directory: str | None = None) -> None:
    """Forget the live gauges of an exited process (e.g. from gunicorn's ``child_exit`` hook)."""
    path = _directory(directory, "mark_process_dead")
    _mark_process_dead(pid, path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def cleanup_dead_processes(directory: str | None = None) -> list[int]:
    """Remove live* gauge files of processes that no longer exist; returns their pids (sorted).

    Use it where no exit hook runs for every child (a crashed worker, a restarted supervisor). A process that
    exited but was not yet reaped by its parent still counts as existing.
    """
    path = _directory(directory, "cleanup_dead_processes")
    pids = {int(match.group(1)) for name in os.listdir(path) if (match := _LIVE_GAUGE_FILE.match(name))}
    dead = sorted(pid for pid in pids if not _pid_alive(pid))
    for pid in dead:
        _mark_process_dead(pid, path)
    if dead:
        logger.info("removed live gauge files of %d dead process(es) from %s", len(dead), path)
    return dead


def clear_multiprocess_dir(directory: str | None = None) -> int:
    """Delete every ``*.db`` file in the directory (at server start, before any worker); returns the count."""
    path = _directory(directory, "clear_multiprocess_dir")
    removed = 0
    for file in glob.glob(os.path.join(path, "*.db")):
        os.remove(file)
        removed += 1
    return removed


__all__ = [
    "ENV_VAR",
    "cleanup_dead_processes",
    "clear_multiprocess_dir",
    "mark_process_dead",
    "multiprocess_dir",
    "multiprocess_registry",
    "values_are_multiprocess",
]
