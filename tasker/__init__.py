"""tasker: a Python workflow engine with observability built in.

What users write::

    from tasker import Tasker, TaskRequest, StepHandler, ApiStepHandler
"""

from tasker.app import Tasker, TaskTimeoutError
from tasker.handlers import ApiStepHandler, StepHandler
from tasker.request import TaskRequest
from tasker.views import StepSequence, StepView, TaskView

__version__ = "0.1.0"

__all__ = [
    "ApiStepHandler",
    "StepHandler",
    "StepSequence",
    "StepView",
    "TaskRequest",
    "TaskTimeoutError",
    "TaskView",
    "Tasker",
    "__version__",
]
