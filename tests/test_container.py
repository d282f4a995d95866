"""The composition root: one bus per process, built once, with its standard subscribers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from spruce import bus as bus_module
from spruce.cli import main
from spruce.container import open_services
from spruce.events import WorkflowEvent

PROJECTS = Path(__file__).parent / "resources" / "projects"


def test_a_whole_spruce_run_builds_exactly_one_bus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    built: list[bus_module.WorkflowEventBus] = []
    original_init = bus_module.WorkflowEventBus.__init__

    def counting_init(self: bus_module.WorkflowEventBus, *args: object, **kwargs: object) -> None:
        built.append(self)
        original_init(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(bus_module.WorkflowEventBus, "__init__", counting_init)
    project = shutil.copytree(PROJECTS / "clean", tmp_path / "clean")
    code = main(["run", str(project), "--store", "memory://", "--fast", "--format", "json"])
    assert code == 0
    assert '"status": "passed"' in capsys.readouterr().out
    assert len(built) == 1


@pytest.mark.anyio
async def test_the_standard_subscribers_count_what_the_bus_publishes() -> None:
    async with open_services(store_url="memory://") as services:
        await services.bus.publish(
            WorkflowEvent.HOOK_COMPLETED,
            job_id="j",
            step_id="fast_hooks/ruff-check",
            data={
                "hook": "ruff-check",
                "phase": "fast_hooks",
                "status": "passed",
                "duration": 0.25,
            },
        )
        await services.bus.publish(
            WorkflowEvent.WORKFLOW_COMPLETED, job_id="j", data={"status": "passed"}
        )
        await services.bus.flush()
        assert services.bus.stats().subscribers == 2
    metrics = services.metrics
    assert metrics.jobs_ended["passed"] == 1
    assert metrics.hooks[("ruff-check", "passed")].total == 0.25
