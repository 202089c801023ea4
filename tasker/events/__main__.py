"""``python -m tasker.events``: print the event catalog as Markdown (the content of ``docs/events.md``).

Same output as ``python -m tasker.events.catalog``, without runpy's warning that the catalog module was
already imported (importing :mod:`tasker` imports it before runpy can run it as ``__main__``).
"""

from tasker.events.catalog import main

main()
