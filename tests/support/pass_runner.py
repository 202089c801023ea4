"""Runs passes of the given tasks until all are terminal: ``python -m tests.support.pass_runner URL TEMPLATE IDS``.

Two of these on the same task ids run passes of the same tasks at the same time (no task claims involved),
so only the step claims keep a step attempt from running twice.
"""

from __future__ import annotations

import json
import sys

from tasker import Tasker

TERMINAL = {"complete", "error", "cancelled", "resolved_manually"}


def main() -> None:
    url, template, ids = sys.argv[1], json.loads(sys.argv[2]), [int(i) for i in sys.argv[3].split(",")]
    app = Tasker(url, config={"backoff": {"max_backoff_seconds": 0}})
    app.register_task_template(template)
    print("ready", flush=True)
    sys.stdin.readline()  # start together: the test releases both runners at once
    pending = list(ids)
    while pending:
        pending = [task_id for task_id in pending if app.run_task(task_id) not in TERMINAL]
    app.shutdown()


if __name__ == "__main__":
    main()
