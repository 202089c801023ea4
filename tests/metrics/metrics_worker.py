"""A database worker serving /metrics, like ``tasker worker --metrics-port 0`` with a config of the test's.

``python -m tests.metrics.metrics_worker URL CONFIG TEMPLATES`` (JSON config and template list); prints
``ready <metrics url>`` once it serves.
"""

from __future__ import annotations

import json
import sys

from tasker import Tasker
from tasker.executors import Worker
from tasker.metrics.http import MetricsServer, make_metrics_app


def main() -> None:
    url, config, templates = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    app = Tasker(url, config=config)
    for template in templates:
        app.register_task_template(template)
    worker = Worker(app, concurrency=2, poll_interval=0.05, recovery_interval=0.5)
    worker.install_signal_handlers()
    server = MetricsServer(make_metrics_app(lambda: app.metrics), port=0).start()
    print("ready", server.url, flush=True)
    worker.run()
    server.stop()
    app.shutdown()


if __name__ == "__main__":
    main()
