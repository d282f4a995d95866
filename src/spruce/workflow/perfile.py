"""Per-file results of file-local hooks: a run checks only the files whose content changed since
the hook (with the same key) last looked at them, and merges the stored findings of the rest.

One document per (hook key, project) holds every file's digest, exit code and findings; it is
written atomically through the result cache, which bounds its size with the other entries.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Awaitable, Callable
from typing import Final

import msgspec

from spruce.hooks.base import Finding, HookResult, Prepared
from spruce.workflow.cache import ResultCache
from spruce.workflow.files import FileSet

MAX_FILES: Final = 100_000  # entries one document keeps (files outside this run's scope too)
_STORABLE: Final = frozenset({"passed", "failed"})


class FileEntry(msgspec.Struct, frozen=True, array_like=True):
    """What a hook found in one file at one content digest."""

    digest: str
    exit_code: int | None
    findings: tuple[Finding, ...] = ()


class FileResults(msgspec.Struct, frozen=True):
    """The stored per-file results of one hook key."""

    files: dict[str, FileEntry]


_decoder: Final = msgspec.json.Decoder(FileResults)
_encoder: Final = msgspec.json.Encoder()


def per_file_key(hook_key: str, project: str) -> str:
    """Where a hook's per-file results live: its key (tool, argv, config, environment) and the
    project, since two projects hold different files under one relative path."""
    return hashlib.sha256(f"per-file\0{hook_key}\0{project}".encode()).hexdigest()


def _load(cache: ResultCache, key: str) -> dict[str, FileEntry]:
    data = cache.get_bytes(key)
    if data is None:
        return {}
    try:
        return dict(_decoder.decode(data).files)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return {}  # damaged or from another version: every file is checked again


async def answer_per_file(
    cache: ResultCache,
    key: str,
    files: FileSet,
    prepared: Prepared,
    run: Callable[[Prepared], Awaitable[HookResult]],
) -> HookResult:
    """The hook's result over all its inputs, running it on the files not answered from the
    stored per-file results; findings come in the order of the inputs."""
    stored = _load(cache, key)
    digests = {path: files.digest(path) for path in prepared.inputs}
    fresh = tuple(
        path
        for path in prepared.inputs
        if (entry := stored.get(path)) is None or entry.digest != digests[path] or not digests[path]
    )
    answered = len(prepared.inputs) - len(fresh)
    ran: HookResult | None = None
    if fresh:
        ran = await run(dataclasses.replace(prepared, inputs=fresh))
        new = _entries(ran, fresh, digests)
        if new is None:  # not a result that can be told apart file by file: report it as is
            return msgspec.structs.replace(ran, files_checked=len(fresh), files_cached=0)
        stored.update(new)
        _save(cache, key, stored, keep=prepared.inputs)
    entries = [stored[path] for path in prepared.inputs]
    findings = tuple(finding for entry in entries for finding in entry.findings)
    # The exit code a run over all the files would have: that of a file with findings (this
    # run's first), else a clean one (0 for a tool, None for an in-process check).
    if ran is not None and (ran.findings or not findings):
        exit_code = ran.exit_code
    else:
        codes = [entry.exit_code for entry in entries if entry.findings]
        exit_code = codes[0] if codes else entries[0].exit_code
    return HookResult(
        status="failed" if findings else "passed",
        exit_code=exit_code,
        findings=findings,
        duration=ran.duration if ran is not None else 0.0,
        files_checked=len(fresh),
        files_cached=answered,
    )


def _entries(
    result: HookResult, fresh: tuple[str, ...], digests: dict[str, str]
) -> dict[str, FileEntry] | None:
    """The run's findings split by file; None when the run cannot be kept per file (a crash, a
    timeout, a failure without findings, or a finding on a file it was not given)."""
    if result.status not in _STORABLE or (result.status == "failed" and not result.findings):
        return None
    by_path: dict[str, list[Finding]] = {path: [] for path in fresh}
    for finding in result.findings:
        if finding.path not in by_path:
            return None
        by_path[finding.path].append(finding)
    return {
        path: FileEntry(
            digest=digests[path],
            exit_code=result.exit_code if found or result.exit_code is None else 0,
            findings=tuple(found),
        )
        for path, found in by_path.items()
    }


def _save(
    cache: ResultCache, key: str, stored: dict[str, FileEntry], *, keep: tuple[str, ...]
) -> None:
    """Store every entry, or only this run's files once the document grows past its bound."""
    if len(stored) > MAX_FILES:
        stored = {path: stored[path] for path in keep}
    cache.put_bytes(key, _encoder.encode(FileResults(files=stored)))
