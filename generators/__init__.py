"""Code generators run by ``tasker generate`` (installed as ``tasker.generators``)."""
