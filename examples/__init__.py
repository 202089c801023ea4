"""Runnable example workflows (installed as ``tasker.examples``); ``tasker demo`` uses ``order``."""
