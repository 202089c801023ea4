"""A database worker process for tests: ``python -m tests.support.worker_proc URL CONFIG TEMPLATE(S) [N]``.

``TEMPLATE(S)`` is one template dict or a list of them (JSON). Exits 1 when the worker could not continue.
"""

from __future__ import annotations

import json
import logging
import sys

from tasker import Tasker
from tasker.executors import Worker


def main() -> None:
    url, config, templates = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    concurrency = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    app = Tasker(url, config=config)
    for template in templates if isinstance(templates, list) else [templates]:
        app.register_task_template(template)
    worker = Worker(app, concurrency=concurrency, poll_interval=0.05, recovery_interval=0.2)
    worker.install_signal_handlers()
    print("ready", flush=True)
    worker.run()
    app.shutdown()
    sys.exit(1 if worker.failed else 0)


if __name__ == "__main__":
    main()
