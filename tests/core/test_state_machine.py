"""Task and step state machines (reference §2): every edge, the guards, the safe helpers and the audit log."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from sqlalchemy import func, insert, select, update

from tasker import Tasker, TaskRequest
from tasker.errors import GuardFailedError, InvalidStateTransition, StoreError
from tasker.models import Task, TaskTransition, WorkflowStep, WorkflowStepTransition
from tasker.state import StepStateMachine, TaskStateMachine, event_for_transition
from tasker.state.machine import Move, TransitionWriter, apply_transition
from tasker.views import TaskView
from tests.support.handlers import template

STATES = ("pending", "in_progress", "complete", "error", "cancelled", "resolved_manually")

#: Reference §2.2.
TASK_EDGES = {
    "pending": {"in_progress", "cancelled", "error"},
    "in_progress": {"complete", "error", "cancelled", "pending"},
    "error": {"pending", "resolved_manually"},
    "complete": {"cancelled"},
    "resolved_manually": {"cancelled"},
    "cancelled": set(),
}
#: Reference §2.3.
STEP_EDGES = {
    "pending": {"in_progress", "error", "cancelled", "resolved_manually"},
    "in_progress": {"complete", "error", "cancelled"},
    "error": {"pending", "resolved_manually"},
    "complete": set(),
    "cancelled": set(),
    "resolved_manually": set(),
}
#: Allowed paths from the initial ``pending`` state to every state.
TASK_PATHS = {
    "pending": [],
    "in_progress": ["in_progress"],
    "complete": ["in_progress", "complete"],
    "error": ["error"],
    "cancelled": ["cancelled"],
    "resolved_manually": ["error", "resolved_manually"],
}
STEP_PATHS = {
    "pending": [],
    "in_progress": ["in_progress"],
    "complete": ["in_progress", "complete"],
    "error": ["error"],
    "cancelled": ["cancelled"],
    "resolved_manually": ["resolved_manually"],
}
PAIRS = list(itertools.product(STATES, STATES))


def _pair_id(pair: tuple[str, str]) -> str:
    return f"{pair[0]}->{pair[1]}"


def make_task(app: Tasker, steps: dict[str, list[str]] | None = None, name: str = "sm") -> TaskView:
    """Register a template (a single step by default) and create one task from it."""
    app.register_task_template(template(name, steps if steps is not None else {"only": []}))
    return app.create_task(TaskRequest(name=name, version="1.0.0", context={"x": 1}))


def walk(app: Tasker, kind: str, entity_id: int, path: list[str]) -> None:
    """Write transitions along ``path`` (allowed edges) starting from the entity's current state."""
    with app.db.transaction() as session:
        model = Task if kind == "task" else WorkflowStep
        pk = Task.task_id if kind == "task" else WorkflowStep.workflow_step_id
        current = session.scalar(select(model.status).where(pk == entity_id))
        for target in path:
            assert apply_transition(session, kind, entity_id, current, target, {"setup": True}) is not None
            current = target


def status_of(app: Tasker, kind: str, entity_id: int) -> str:
    with app.db.read() as session:
        if kind == "task":
            return session.scalar(select(Task.status).where(Task.task_id == entity_id))
        return session.scalar(select(WorkflowStep.status).where(WorkflowStep.workflow_step_id == entity_id))


def log_rows(app: Tasker, kind: str, entity_id: int) -> list[tuple[str | None, str, int, bool]]:
    """(from_state, to_state, sort_key, most_recent) of every transition row of the entity, by sort_key."""
    log = TaskTransition if kind == "task" else WorkflowStepTransition
    fk = TaskTransition.task_id if kind == "task" else WorkflowStepTransition.workflow_step_id
    with app.db.read() as session:
        rows = session.execute(
            select(log.from_state, log.to_state, log.sort_key, log.most_recent)
            .where(fk == entity_id)
            .order_by(log.sort_key)
        ).all()
    return [tuple(r) for r in rows]


def total_log_rows(app: Tasker) -> int:
    with app.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(TaskTransition))) + int(
            session.scalar(select(func.count()).select_from(WorkflowStepTransition))
        )


def complete_all_steps(app: Tasker, task: TaskView) -> None:
    for step in task.steps:
        walk(app, "step", step.step_id, ["in_progress", "complete"])


# -- every pair of states ------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", PAIRS, ids=_pair_id)
def test_task_transition_pair(app: Tasker, pair: tuple[str, str]) -> None:
    from_state, to_state = pair
    task = make_task(app)
    complete_all_steps(app, task)  # so the completion guard never interferes with the edge table
    walk(app, "task", task.task_id, TASK_PATHS[from_state])
    before = log_rows(app, "task", task.task_id)
    assert status_of(app, "task", task.task_id) == from_state

    if to_state in TASK_EDGES[from_state]:
        with app.db.transaction() as session:
            machine = TaskStateMachine(session, task.task_id)
            assert machine.current_state == from_state
            assert machine.can_transition_to(to_state)
            written = machine.transition_to(to_state, {"why": "test"})
        assert (written.kind, written.entity_id) == ("task", task.task_id)
        assert (written.from_state, written.to_state) == (from_state, to_state)
        assert written.metadata == {"why": "test"}
        assert status_of(app, "task", task.task_id) == to_state
        after = log_rows(app, "task", task.task_id)
        assert len(after) == len(before) + 1
        assert after[-1][:2] == (from_state, to_state) and after[-1][3] is True
    else:
        with app.db.transaction() as session:
            machine = TaskStateMachine(session, task.task_id)
            assert not machine.can_transition_to(to_state)
            with pytest.raises(InvalidStateTransition) as info:
                machine.transition_to(to_state)
        assert (info.value.from_state, info.value.to_state) == (from_state, to_state)
        assert status_of(app, "task", task.task_id) == from_state
        assert log_rows(app, "task", task.task_id) == before


@pytest.mark.parametrize("pair", PAIRS, ids=_pair_id)
def test_step_transition_pair(app: Tasker, pair: tuple[str, str]) -> None:
    from_state, to_state = pair
    step = make_task(app).steps[0]  # a root step: the dependency guard always passes
    walk(app, "step", step.step_id, STEP_PATHS[from_state])
    before = log_rows(app, "step", step.step_id)
    assert status_of(app, "step", step.step_id) == from_state

    if to_state in STEP_EDGES[from_state]:
        with app.db.transaction() as session:
            machine = StepStateMachine(session, step.step_id)
            assert machine.current_state == from_state
            assert machine.can_transition_to(to_state)
            written = machine.transition_to(to_state)
        assert (written.kind, written.entity_id) == ("step", step.step_id)
        assert (written.from_state, written.to_state) == (from_state, to_state)
        assert status_of(app, "step", step.step_id) == to_state
        after = log_rows(app, "step", step.step_id)
        assert len(after) == len(before) + 1
        assert after[-1][:2] == (from_state, to_state) and after[-1][3] is True
    else:
        with app.db.transaction() as session:
            machine = StepStateMachine(session, step.step_id)
            assert not machine.can_transition_to(to_state)
            with pytest.raises(InvalidStateTransition) as info:
                machine.transition_to(to_state)
        assert (info.value.from_state, info.value.to_state) == (from_state, to_state)
        assert status_of(app, "step", step.step_id) == from_state
        assert log_rows(app, "step", step.step_id) == before


@pytest.mark.parametrize("kind", ["task", "step"])
def test_unknown_target_state_is_refused(app: Tasker, kind: str) -> None:
    task = make_task(app)
    entity_id = task.task_id if kind == "task" else task.steps[0].step_id
    machine_class = TaskStateMachine if kind == "task" else StepStateMachine
    with app.db.transaction() as session:
        machine = machine_class(session, entity_id)
        assert not machine.can_transition_to("finished")
        with pytest.raises(InvalidStateTransition):
            machine.transition_to("finished")
        assert machine.safe_transition_to("finished") is None
    assert total_log_rows(app) == 0


# -- guards --------------------------------------------------------------------------------------------


def test_task_completion_guard_waits_for_every_step(app: Tasker) -> None:
    task = make_task(app, {"a": [], "b": []})
    a, b = task.step("a"), task.step("b")
    walk(app, "task", task.task_id, ["in_progress"])
    walk(app, "step", a.step_id, ["in_progress", "complete"])
    for b_state, path in [("pending", []), ("in_progress", ["in_progress"]), ("error", ["error"])]:
        walk(app, "step", b.step_id, path)  # b: pending, then in_progress, then error
        with app.db.transaction() as session:
            machine = TaskStateMachine(session, task.task_id)
            assert not machine.can_transition_to("complete"), b_state
            with pytest.raises(GuardFailedError) as info:
                machine.transition_to("complete")
            assert info.value.to_state == "complete"
        assert status_of(app, "task", task.task_id) == "in_progress"
    # error -> resolved_manually: resolved steps count as complete
    walk(app, "step", b.step_id, ["resolved_manually"])
    with app.db.transaction() as session:
        machine = TaskStateMachine(session, task.task_id)
        assert machine.can_transition_to("complete")
        machine.transition_to("complete")
    assert status_of(app, "task", task.task_id) == "complete"


def test_task_completion_guard_refuses_a_cancelled_step(app: Tasker) -> None:
    task = make_task(app, {"a": [], "b": []})
    walk(app, "task", task.task_id, ["in_progress"])
    walk(app, "step", task.step("a").step_id, ["in_progress", "complete"])
    walk(app, "step", task.step("b").step_id, ["cancelled"])
    with app.db.transaction() as session, pytest.raises(GuardFailedError):
        TaskStateMachine(session, task.task_id).transition_to("complete")
    assert status_of(app, "task", task.task_id) == "in_progress"


def test_task_completion_guard_passes_when_all_steps_complete(app: Tasker) -> None:
    task = make_task(app, {"a": [], "b": ["a"]})
    walk(app, "task", task.task_id, ["in_progress"])
    complete_all_steps(app, task)
    with app.db.transaction() as session:
        TaskStateMachine(session, task.task_id).transition_to("complete")
    assert status_of(app, "task", task.task_id) == "complete"


@pytest.mark.parametrize(
    ("parent_path", "blocked"),
    [
        ([], True),  # pending
        (["in_progress"], True),
        (["error"], True),
        (["in_progress", "error"], True),
        (["cancelled"], True),
        (["in_progress", "complete"], False),
        (["resolved_manually"], False),
        (["error", "resolved_manually"], False),
    ],
    ids=["pending", "in_progress", "error", "failed", "cancelled", "complete", "resolved", "error-resolved"],
)
def test_step_dependency_guard(app: Tasker, parent_path: list[str], blocked: bool) -> None:
    task = make_task(app, {"parent": [], "child": ["parent"]})
    parent, child = task.step("parent"), task.step("child")
    walk(app, "step", parent.step_id, parent_path)
    with app.db.transaction() as session:
        machine = StepStateMachine(session, child.step_id)
        assert machine.can_transition_to("in_progress") is not blocked
        if blocked:
            with pytest.raises(GuardFailedError) as info:
                machine.transition_to("in_progress")
            assert "parent" in str(info.value)
        else:
            machine.transition_to("in_progress")
    assert status_of(app, "step", child.step_id) == ("pending" if blocked else "in_progress")
    assert len(log_rows(app, "step", child.step_id)) == (0 if blocked else 1)


def test_step_dependency_guard_needs_every_parent(app: Tasker) -> None:
    with_steps = make_task(app, {"a": [], "b": [], "d": ["a", "b"]}, name="two_parents")
    a, b, d = with_steps.step("a"), with_steps.step("b"), with_steps.step("d")
    walk(app, "step", a.step_id, ["in_progress", "complete"])
    with app.db.transaction() as session, pytest.raises(GuardFailedError) as info:
        StepStateMachine(session, d.step_id).transition_to("in_progress")
    assert "b" in str(info.value)
    walk(app, "step", b.step_id, ["resolved_manually"])
    with app.db.transaction() as session:
        StepStateMachine(session, d.step_id).transition_to("in_progress")
    assert status_of(app, "step", d.step_id) == "in_progress"


def test_other_step_edges_ignore_the_dependency_guard(app: Tasker) -> None:
    task = make_task(app, {"parent": [], "child": ["parent"]})
    child = task.step("child")
    with app.db.transaction() as session:  # pending parent: in_progress is guarded, cancelled is not
        StepStateMachine(session, child.step_id).transition_to("cancelled")
    assert status_of(app, "step", child.step_id) == "cancelled"


# -- safe and conditional transitions --------------------------------------------------------------------


def test_safe_transition_same_state_is_a_no_op(app: Tasker) -> None:
    task = make_task(app)
    walk(app, "task", task.task_id, ["in_progress"])
    rows = total_log_rows(app)
    with app.db.transaction() as session:
        assert TaskStateMachine(session, task.task_id).safe_transition_to("in_progress") is None
        assert StepStateMachine(session, task.steps[0].step_id).safe_transition_to("pending") is None
    assert total_log_rows(app) == rows
    assert status_of(app, "task", task.task_id) == "in_progress"


def test_safe_transition_disallowed_is_a_no_op(app: Tasker) -> None:
    task = make_task(app)
    rows = total_log_rows(app)
    with app.db.transaction() as session:
        assert TaskStateMachine(session, task.task_id).safe_transition_to("complete") is None  # pending -> complete
        assert StepStateMachine(session, task.steps[0].step_id).safe_transition_to("complete") is None
    assert total_log_rows(app) == rows
    assert status_of(app, "task", task.task_id) == "pending"
    assert status_of(app, "step", task.steps[0].step_id) == "pending"


def test_safe_transition_guarded_is_a_no_op(app: Tasker) -> None:
    task = make_task(app, {"parent": [], "child": ["parent"]})
    walk(app, "task", task.task_id, ["in_progress"])
    rows = total_log_rows(app)
    with app.db.transaction() as session:
        assert TaskStateMachine(session, task.task_id).safe_transition_to("complete") is None
        assert StepStateMachine(session, task.step("child").step_id).safe_transition_to("in_progress") is None
    assert total_log_rows(app) == rows
    assert status_of(app, "task", task.task_id) == "in_progress"
    assert status_of(app, "step", task.step("child").step_id) == "pending"


def test_safe_transition_allowed_writes_one_row(app: Tasker) -> None:
    task = make_task(app)
    with app.db.transaction() as session:
        written = TaskStateMachine(session, task.task_id).safe_transition_to("in_progress", {"k": 1})
    assert written is not None and written.event == "task.start_requested"
    assert log_rows(app, "task", task.task_id) == [("pending", "in_progress", 1, True)]


def test_conditional_transition_return_values(app: Tasker) -> None:
    task = make_task(app)
    with app.db.transaction() as session:
        machine = TaskStateMachine(session, task.task_id)
        assert machine.conditional_transition_to("pending", {"error"}) == "already_target"
        assert machine.conditional_transition_to("in_progress", {"error"}) == "invalid_from_state"
        assert machine.current_state == "pending"
        assert machine.conditional_transition_to("in_progress", {"pending"}) == "transitioned"
        assert machine.current_state == "in_progress"
        assert machine.conditional_transition_to("in_progress", {"pending"}) == "already_target"
    assert [r[:2] for r in log_rows(app, "task", task.task_id)] == [("pending", "in_progress")]
    step = task.steps[0]
    with app.db.transaction() as session:
        machine = StepStateMachine(session, step.step_id)
        assert machine.conditional_transition_to("error", {"in_progress"}) == "invalid_from_state"
        assert machine.conditional_transition_to("error", {"pending", "in_progress"}) == "transitioned"
        assert machine.conditional_transition_to("error", {"pending"}) == "already_target"
    assert status_of(app, "step", step.step_id) == "error"


# -- the audit log -------------------------------------------------------------------------------------


def _assert_log_consistent(app: Tasker, kind: str, entity_id: int, expected: list[tuple[str, str]]) -> None:
    rows = log_rows(app, kind, entity_id)
    assert [(f, t) for f, t, _, _ in rows] == expected
    keys = [k for _, _, k, _ in rows]
    assert all(b > a for a, b in itertools.pairwise(keys)), keys
    assert [m for *_, m in rows].count(True) == 1
    assert rows[-1][3] is True
    assert status_of(app, kind, entity_id) == rows[-1][1]


def test_task_transition_log(app: Tasker) -> None:
    task = make_task(app)
    other = make_task(app, name="other")
    complete_all_steps(app, task)
    path = ["in_progress", "pending", "in_progress", "error", "pending", "in_progress", "complete", "cancelled"]
    for target in path:  # one transaction per transition, interleaved with another task's log
        with app.db.transaction() as session:
            TaskStateMachine(session, task.task_id).transition_to(target)
        walk(app, "task", other.task_id, ["in_progress", "pending"] if target != "cancelled" else [])
    expected = list(zip(["pending", *path[:-1]], path, strict=True))
    _assert_log_consistent(app, "task", task.task_id, expected)
    _assert_log_consistent(app, "task", other.task_id, [("pending", "in_progress"), ("in_progress", "pending")] * 7)
    with app.db.transaction() as session:
        history = TaskStateMachine(session, task.task_id).history()
    assert [(h.from_state, h.to_state) for h in history] == expected
    assert history[0].metadata_ == {}


def test_step_transition_log(app: Tasker) -> None:
    step = make_task(app).steps[0]
    path = ["in_progress", "error", "pending", "in_progress", "error", "pending", "in_progress", "complete"]
    with app.db.transaction() as session:  # several transitions in one database transaction
        machine = StepStateMachine(session, step.step_id)
        for i, target in enumerate(path):
            machine.transition_to(target, {"n": i})
    expected = list(zip(["pending", *path[:-1]], path, strict=True))
    _assert_log_consistent(app, "step", step.step_id, expected)
    with app.db.read() as session:
        metadata = session.scalars(
            select(WorkflowStepTransition.metadata_)
            .where(WorkflowStepTransition.workflow_step_id == step.step_id)
            .order_by(WorkflowStepTransition.sort_key)
        ).all()
    assert metadata == [{"n": i} for i in range(len(path))]


def test_no_transition_rows_at_creation(app: Tasker) -> None:
    task = make_task(app, {"a": [], "b": ["a"]})
    assert total_log_rows(app) == 0
    assert status_of(app, "task", task.task_id) == "pending"
    assert {status_of(app, "step", s.step_id) for s in task.steps} == {"pending"}


def test_database_keeps_one_most_recent_row(app: Tasker) -> None:
    """Whoever inserts a log row, the database clears the flag of the entity's previous row (a trigger), and the
    partial unique index refuses a second ``most_recent`` row made any other way."""
    task = make_task(app)
    walk(app, "task", task.task_id, ["in_progress"])
    with app.db.transaction() as session:
        session.execute(
            insert(TaskTransition).values(
                task_id=task.task_id, to_state="error", from_state="in_progress", metadata={}, sort_key=99,
                most_recent=True,
            )
        )  # fmt: skip
    assert log_rows(app, "task", task.task_id) == [("pending", "in_progress", 1, False), ("in_progress", "error", 99, True)]
    with pytest.raises(StoreError), app.db.transaction() as session:
        session.execute(
            update(TaskTransition)
            .where(TaskTransition.task_id == task.task_id, TaskTransition.sort_key == 1)
            .values(most_recent=True)
        )
    assert [row[3] for row in log_rows(app, "task", task.task_id)] == [False, True]


def test_database_counts_unsatisfied_parents_whoever_completes_a_step(app: Tasker) -> None:
    """A step that reaches a final state (``complete``, ``resolved_manually``) takes one unsatisfied parent off each
    child, once, in the statement that moved it - also when that statement is not the engine's (a trigger)."""
    task = make_task(app, {"a": [], "b": [], "c": ["a", "b"]}, name="counted")
    a, b, c = (task.step(name).step_id for name in ("a", "b", "c"))

    def unsatisfied() -> int:
        with app.db.read() as session:
            return session.scalar(select(WorkflowStep.unsatisfied_parents).where(WorkflowStep.workflow_step_id == c))

    assert unsatisfied() == 2
    with app.db.transaction() as session:
        session.execute(update(WorkflowStep).where(WorkflowStep.workflow_step_id == a).values(status="in_progress"))
    assert unsatisfied() == 2
    with app.db.transaction() as session:  # a raw update, as an operator's SQL would be
        session.execute(update(WorkflowStep).where(WorkflowStep.workflow_step_id == a).values(status="complete"))
    assert unsatisfied() == 1
    with app.db.transaction() as session:  # complete -> complete is no change
        session.execute(update(WorkflowStep).where(WorkflowStep.workflow_step_id == a).values(status="complete"))
    assert unsatisfied() == 1
    walk(app, "step", b, ["error", "resolved_manually"])
    assert unsatisfied() == 0


def test_database_refuses_an_unknown_state(app: Tasker) -> None:
    task = make_task(app)
    with pytest.raises(StoreError), app.db.transaction() as session:
        session.execute(
            insert(WorkflowStepTransition).values(
                workflow_step_id=task.steps[0].step_id,
                to_state="done",
                from_state=None,
                metadata={},
                sort_key=1,
                most_recent=True,
            )
        )


# -- transition -> event map (reference §2.6) ----------------------------------------------------------

TASK_EVENT_TABLE = [
    (None, "pending", "task.initialize_requested"),
    (None, "in_progress", "task.start_requested"),
    (None, "complete", "task.completed"),
    (None, "error", "task.failed"),
    (None, "cancelled", "task.cancelled"),
    (None, "resolved_manually", "task.resolved_manually"),
    ("pending", "in_progress", "task.start_requested"),
    ("pending", "cancelled", "task.cancelled"),
    ("pending", "error", "task.failed"),
    ("in_progress", "pending", "task.initialize_requested"),
    ("in_progress", "complete", "task.completed"),
    ("in_progress", "error", "task.failed"),
    ("in_progress", "cancelled", "task.cancelled"),
    ("error", "pending", "task.retry_requested"),
    ("error", "resolved_manually", "task.resolved_manually"),
    ("complete", "cancelled", "task.cancelled"),
    ("resolved_manually", "cancelled", "task.cancelled"),
]
STEP_EVENT_TABLE = [
    (None, "pending", "step.initialize_requested"),
    (None, "in_progress", "step.execution_requested"),
    (None, "complete", "step.completed"),
    (None, "error", "step.failed"),
    (None, "cancelled", "step.cancelled"),
    (None, "resolved_manually", "step.resolved_manually"),
    ("pending", "in_progress", "step.execution_requested"),
    ("pending", "error", "step.failed"),
    ("pending", "cancelled", "step.cancelled"),
    ("pending", "resolved_manually", "step.resolved_manually"),
    ("in_progress", "complete", "step.completed"),
    ("in_progress", "error", "step.failed"),
    ("in_progress", "cancelled", "step.cancelled"),
    ("error", "pending", "step.retry_requested"),
    ("error", "resolved_manually", "step.resolved_manually"),
]


@pytest.mark.parametrize(("from_state", "to_state", "event"), TASK_EVENT_TABLE)
def test_task_transition_event(from_state: str | None, to_state: str, event: str) -> None:
    assert event_for_transition("task", from_state, to_state) == event


@pytest.mark.parametrize(("from_state", "to_state", "event"), STEP_EVENT_TABLE)
def test_step_transition_event(from_state: str | None, to_state: str, event: str) -> None:
    assert event_for_transition("step", from_state, to_state) == event


@pytest.mark.parametrize(
    ("kind", "table"), [("task", TASK_EVENT_TABLE), ("step", STEP_EVENT_TABLE)], ids=["task", "step"]
)
def test_every_other_pair_is_unmapped(kind: str, table: list[tuple[str | None, str, str]]) -> None:
    mapped = {(f, t) for f, t, _ in table}
    for from_state, to_state in itertools.product((None, *STATES), STATES):
        if (from_state, to_state) not in mapped:
            assert event_for_transition(kind, from_state, to_state) is None, (from_state, to_state)
    assert event_for_transition(kind, "complete", "pending") is None
    assert event_for_transition(kind, "pending", "nonsense") is None


@pytest.mark.parametrize(
    ("kind", "path", "events"),
    [
        ("task", ["in_progress", "error", "pending"], ["task.start_requested", "task.failed", "task.retry_requested"]),
        (
            "step",
            ["in_progress", "error", "pending"],
            ["step.execution_requested", "step.failed", "step.retry_requested"],
        ),
    ],
    ids=["task", "step"],
)
def test_written_transitions_carry_their_event(app: Tasker, kind: str, path: list[str], events: list[str]) -> None:
    task = make_task(app)
    entity_id = task.task_id if kind == "task" else task.steps[0].step_id
    machine_class: Callable[..., TaskStateMachine | StepStateMachine] = (
        TaskStateMachine if kind == "task" else StepStateMachine
    )
    written = []
    with app.db.transaction() as session:
        for target in path:
            written.append(machine_class(session, entity_id).transition_to(target).event)
    assert written == events


def test_writer_batches_log_rows_of_a_transaction(app: Tasker) -> None:
    """Several transitions of one entity and of others in one writer: consecutive sort keys after the rows already
    there, only each entity's last row most recent, children's readiness counters decremented before the flush."""
    task = make_task(app, {"a": [], "b": [], "c": ["a"]}, name="batched")
    a, b, c = (task.step(name).step_id for name in ("a", "b", "c"))
    walk(app, "step", a, ["in_progress"])
    with app.db.transaction() as session:
        writer = TransitionWriter(session)
        done = writer.apply("step", [Move(a, "in_progress", "complete"), Move(b, "pending", "in_progress")])
        assert [t is not None for t in done] == [True, True]
        again = writer.apply("step", [Move(b, "in_progress", "error"), Move(c, "complete", "error")])
        assert again[0] is not None and again[1] is None  # b moved again; c was not complete
        ready = session.scalar(select(WorkflowStep.unsatisfied_parents).where(WorkflowStep.workflow_step_id == c))
        assert ready == 0  # decremented at apply, before the flush
        assert writer.apply("step", [Move(a, "in_progress", "complete")]) == [None]  # a lost race: nothing written
        ready = session.scalar(select(WorkflowStep.unsatisfied_parents).where(WorkflowStep.workflow_step_id == c))
        assert ready == 0  # not decremented again
        writer.flush()
    assert log_rows(app, "step", a) == [("pending", "in_progress", 1, False), ("in_progress", "complete", 2, True)]
    assert log_rows(app, "step", b) == [("pending", "in_progress", 1, False), ("in_progress", "error", 2, True)]
    assert log_rows(app, "step", c) == []
