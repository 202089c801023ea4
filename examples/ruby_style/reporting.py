"""Handlers of ``analytics.yaml`` (Ruby module ``Reporting``); they publish the template's events by short name."""

from __future__ import annotations

from typing import Any

from tasker.examples.ruby_style.simulate import maybe_fail

from tasker import StepHandler, StepSequence, StepView, TaskView

ROWS = {"pull_sales": 1200, "pull_accounts": 300, "pull_catalog": 80}


class _Extract(StepHandler):
    """Publishes ``extraction_started``/``extraction_finished`` (and, on failure, the undeclared ``extraction_failed``)."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        self.publish_event("extraction_started", {"step_name": step.name, "day": task.context["day"]})
        try:
            maybe_fail(task, step)
        except Exception as exc:
            self.publish_event("extraction_failed", {"step_name": step.name, "error": str(exc)})
            raise
        rows = ROWS[step.name]
        self.publish_event("extraction_finished", {"step_name": step.name, "rows": rows})
        return {"rows": rows, "source": self.config["source"], "batch_size": self.config["batch_size"]}


class PullSalesHandler(_Extract):
    """Sales rows of the day."""


class PullAccountsHandler(_Extract):
    """Account rows from the CRM."""


class PullCatalogHandler(_Extract):
    """Catalog rows."""


class _Score(StepHandler):
    """Combines the rows of its parent steps."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        maybe_fail(task, step)
        parents = [sequence.find_step_by_name(name) for name in step.parent_names]
        return {"score": sum(p.results["rows"] for p in parents if p is not None)}


class ScoreAccountsHandler(_Score):
    """Accounts scored against sales."""


class ScoreCatalogHandler(_Score):
    """Catalog scored against sales."""


class CompileReportHandler(StepHandler):
    """Joins both scores."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        maybe_fail(task, step)
        scores = [sequence.find_step_by_name(n) for n in ("score_accounts", "score_catalog")]
        total = sum(s.results["score"] for s in scores if s is not None)
        self.publish_event("milestone_reached", {"milestone": "report_compiled", "total": total})
        return {"total": total}


class RefreshBoardHandler(StepHandler):
    """Publishes the report on the dashboard."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        maybe_fail(task, step)
        return {"board": f"nightly/{task.context['day']}"}


class NotifyTeamHandler(StepHandler):
    """Tells the team the report is out."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        maybe_fail(task, step)
        return {"notified": task.context.get("channels") or ["#reporting"]}
