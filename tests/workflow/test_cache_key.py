"""What the result cache's key holds besides files: a `cache_env` variable's value, the
distributions installed in the project's environment, and the interpreter. Changing any of them
re-runs the hooks it affects and leaves the others answered from the cache."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from spruce.events import Event
from tests.workflow.runner import hook_ends, run_workflow

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def _cached(events: list[Event]) -> dict[str, bool]:
    return {step: bool(e.data["cached"]) for step, e in hook_ends(events).items()}


def _write(project: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    return project


async def test_a_changed_cache_env_value_reruns_the_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _write(
        tmp_path / "p",
        {
            "pyproject.toml": '[tool.spruce]\ncache_env = ["SPRUCE_SAMPLE_MODE"]\n',
            "test_mode.py": "import os\n\n\ndef test_mode():\n"
            '    assert os.environ.get("SPRUCE_SAMPLE_MODE") != "broken"\n',
        },
    )
    cache = tmp_path / "cache"
    monkeypatch.setenv("SPRUCE_SAMPLE_MODE", "fine")
    first, _ = await run_workflow(project, workflow="tests", cache_dir=cache)
    assert first.exit_code == 0
    _, again = await run_workflow(project, workflow="tests", cache_dir=cache, job_id="job2")
    assert _cached(again)["tests/pytest"]
    monkeypatch.setenv("SPRUCE_SAMPLE_MODE", "broken")
    changed, events = await run_workflow(project, workflow="tests", cache_dir=cache, job_id="j3")
    assert not _cached(events)["tests/pytest"]
    assert changed.exit_code == 1
    monkeypatch.delenv("SPRUCE_SAMPLE_MODE")  # unset is a value of its own, too
    _, unset = await run_workflow(project, workflow="tests", cache_dir=cache, job_id="j4")
    assert not _cached(unset)["tests/pytest"]


def _wheel(directory: Path, version: str) -> Path:
    """A tiny pure-Python wheel of `tinydist` at `version`, built by hand (no build backend)."""
    name = f"tinydist-{version}"
    files = {
        "tinydist/__init__.py": f'VERSION = "{version}"\n',
        f"{name}.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinydist\n"
        f"Version: {version}\n",
        f"{name}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{name}.dist-info/RECORD,,")
    wheel = directory / f"{name}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
        archive.writestr(f"{name}.dist-info/RECORD", "\n".join(record) + "\n")
    return wheel


def _venv(project: Path, python: str) -> Path:
    shutil.rmtree(project / ".venv", ignore_errors=True)
    subprocess.run([python, "-m", "venv", "--without-pip", str(project / ".venv")], check=True)
    return project / ".venv" / "bin" / "python"


def _pip_install(venv_python: Path, wheel: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv_python), "install", "-q",
         "--no-index", "--no-deps", "--disable-pip-version-check", str(wheel)],
        check=True,
        capture_output=True,
    )  # fmt: skip


_TYPED = {
    "pyproject.toml": "[tool.spruce.hooks.bandit]\nenabled = false\n"
    "[tool.spruce.hooks.vulture]\nenabled = false\n",
    "app.py": "import tinydist  # type: ignore[import-not-found,unused-ignore]\n\n\n"
    "def version() -> str:\n    return str(tinydist.VERSION)\n",
}


async def test_upgrading_and_downgrading_a_distribution_reruns_mypy_only(tmp_path: Path) -> None:
    project = _write(tmp_path / "p", _TYPED)
    cache = tmp_path / "cache"
    python = _venv(project, sys.executable)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _pip_install(python, _wheel(wheels, "1.0"))
    await run_workflow(project, workflow="comprehensive", cache_dir=cache)
    _, same = await run_workflow(project, workflow="comprehensive", cache_dir=cache, job_id="j2")
    assert _cached(same)["comprehensive_hooks/mypy"]
    # An upgrade, then a downgrade (to a version not seen yet: back at 1.0 the cached answer of
    # the first run would be the right one).
    for number, version in enumerate(("2.0", "1.5")):
        _pip_install(python, _wheel(wheels, version))
        _, events = await run_workflow(
            project, workflow="comprehensive", cache_dir=cache, job_id=f"up{number}"
        )
        assert not _cached(events)["comprehensive_hooks/mypy"], version
    await run_workflow(project, workflow="fast", cache_dir=cache, job_id="f1")
    _pip_install(python, _wheel(wheels, "2.0"))
    _, fast_again = await run_workflow(project, workflow="fast", cache_dir=cache, job_id="f2")
    # ruff runs in spruce's own environment: the project's distributions do not decide it.
    assert _cached(fast_again)["fast_hooks/ruff-check"]


async def test_switching_the_interpreter_reruns_the_hooks_that_use_it(tmp_path: Path) -> None:
    other = shutil.which("python3.11", path="/usr/bin")
    base = getattr(sys, "_base_executable", sys.executable)
    if other is None or Path(other).resolve() == Path(base).resolve():
        pytest.skip("needs a second Python 3.11 installation at /usr/bin")
    project = _write(tmp_path / "p", _TYPED)
    cache = tmp_path / "cache"
    await run_workflow(project, workflow="comprehensive", cache_dir=cache)
    _venv(project, base)  # no .venv, then one: mypy now checks against the venv's interpreter
    _, first = await run_workflow(project, workflow="comprehensive", cache_dir=cache, job_id="j2")
    assert not _cached(first)["comprehensive_hooks/mypy"]
    _, same = await run_workflow(project, workflow="comprehensive", cache_dir=cache, job_id="j3")
    assert _cached(same)["comprehensive_hooks/mypy"]
    _venv(project, other)  # the same path, `.venv/bin/python`, another interpreter behind it
    _, switched = await run_workflow(
        project, workflow="comprehensive", cache_dir=cache, job_id="j4"
    )
    assert not _cached(switched)["comprehensive_hooks/mypy"]


def test_one_interpreter_by_another_name_keeps_the_cache(tmp_path: Path) -> None:
    """The `spruce` script starts python3, `python -m spruce` starts python: the same
    interpreter, so the second run answers every hook from the cache the first filled."""
    project = tmp_path / "p"
    shutil.copytree(Path(__file__).parents[1] / "resources/projects/clean", project)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "SPRUCE_CACHE_DIR": str(tmp_path / "cache"), "SPRUCE_STORE": "memory://"}
    documents = []
    for name in ("python", "python3"):
        assert (bin_dir / name).exists(), f"a virtual environment has {name}"
        run = subprocess.run(
            [str(bin_dir / name), "-m", "spruce", "run", str(project), "--format", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        documents.append(json.loads(run.stdout))
    second = [hook for phase in documents[1]["phases"] for hook in phase["hooks"]]
    ran = [hook["id"] for hook in second if hook["status"] != "skipped"]
    assert ran and all(hook["cached"] for hook in second if hook["id"] in ran), ran
