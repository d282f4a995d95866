"""Which Python runs a project's tools, and which tools (at which versions) it has.

Versions come from the `*.dist-info` directory names of the interpreter's site-packages: one
directory listing, no subprocess, so the result cache can key on them cheaply.
"""

from __future__ import annotations

import os
import re
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Final

_DIST_INFO: Final = re.compile(r"^(?P<name>.+?)-(?P<version>[^-]+)\.dist-info$")


@dataclass(frozen=True, kw_only=True)
class ToolEnv:
    """An interpreter and the distributions installed in it (normalised name -> version)."""

    python: Path
    versions: dict[str, str]

    def version(self, package: str) -> str | None:
        """The installed version of a distribution, or None if it is missing."""
        return self.versions.get(normalise(package))


def normalise(name: str) -> str:
    """PEP 503 normalisation of a distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project_python(project: Path) -> Path | None:
    """The interpreter of the project's `.venv`, if it has one."""
    venv = project / ".venv"
    for candidate in (venv / "bin" / "python", venv / "Scripts" / "python.exe"):
        if candidate.exists():
            return candidate
    return None


def tool_envs(project: Path) -> tuple[ToolEnv, ToolEnv]:
    """(the project's environment, spruce's own): equal when the project has no `.venv`."""
    own = ToolEnv(python=Path(sys.executable), versions=_scan(_own_site_dirs()))
    venv_python = project_python(project)
    if venv_python is None:
        return own, own
    venv = project / ".venv"
    site_dirs = [*venv.glob("lib/python3*/site-packages"), venv / "Lib" / "site-packages"]
    return ToolEnv(python=venv_python, versions=_scan(site_dirs)), own


def _own_site_dirs() -> list[Path]:
    paths = sysconfig.get_paths()
    dirs = {Path(paths["purelib"]), Path(paths["platlib"])}
    dirs.update(Path(entry) for entry in sys.path if entry.endswith("site-packages"))
    return sorted(dirs)


def _scan(site_dirs: list[Path]) -> dict[str, str]:
    versions: dict[str, str] = {}
    for directory in site_dirs:
        try:
            entries = os.listdir(directory)
        except OSError:
            continue
        for entry in entries:
            match = _DIST_INFO.match(entry)
            if match:
                versions.setdefault(normalise(match["name"]), match["version"])
    return versions
