"""Which Python runs a project's tools, and which tools (at which versions) it has.

Versions come from the `*.dist-info` directory names of the interpreter's site-packages: one
directory listing, no subprocess, so the result cache can key on them cheaply.
"""

from __future__ import annotations

import hashlib
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
    python_version: str = ""  # the interpreter's version (pyvenv.cfg of a venv, else sys.version)

    def version(self, package: str) -> str | None:
        """The installed version of a distribution, or None if it is missing."""
        return self.versions.get(normalise(package))


def fingerprint(env: ToolEnv) -> str:
    """A hash of the interpreter (path and version) and every distribution installed in it."""
    listing = "\n".join(
        [str(env.python), env.python_version]
        + [f"{name}=={version}" for name, version in sorted(env.versions.items())]
    )
    return hashlib.blake2b(listing.encode(), digest_size=12).hexdigest()


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


def _canonical(python: Path) -> Path:
    """One name for spruce's interpreter however it was started: a virtual environment's
    python3 (what the `spruce` script runs) is its python (what `python -m spruce` runs), and
    the cache keys that name it must not tell them apart."""
    plain = python.with_name("python")
    try:
        return plain if plain != python and plain.samefile(python) else python
    except OSError:
        return python


def tool_envs(project: Path) -> tuple[ToolEnv, ToolEnv]:
    """(the project's environment, spruce's own): equal when the project has no `.venv`."""
    own = ToolEnv(
        python=_canonical(Path(sys.executable)),
        versions=_scan(_own_site_dirs()),
        python_version=sys.version,
    )
    venv_python = project_python(project)
    if venv_python is None:
        return own, own
    venv = project / ".venv"
    site_dirs = [*venv.glob("lib/python3*/site-packages"), venv / "Lib" / "site-packages"]
    env = ToolEnv(python=venv_python, versions=_scan(site_dirs), python_version=_venv_version(venv))
    return env, own


def _venv_version(venv: Path) -> str:
    """The venv's interpreter version from `pyvenv.cfg` (no subprocess), with the real path of
    its interpreter: a venv re-created with another Python changes one or the other."""
    try:
        text = (venv / "pyvenv.cfg").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    fields = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition("=") for line in text.splitlines())
    )
    version = fields.get("version_info") or fields.get("version") or "?"
    executable = fields.get("executable") or fields.get("home") or ""
    return f"{version} {executable}"


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
