"""A pytest plugin for test selection: it leaves out the tests whose outcome spruce carries, and
records which blocks of the project's files each test that runs executes.

Loaded into the project's interpreter (copied next to the job), so it needs only the standard
library and pytest. Its block functions are also what spruce uses to compare a file with its
recorded blocks.

A block is the body of a function or method at module or class level (nested functions belong
to their enclosing body), keyed by a CRC of its qualified name and text; the module's top level,
with the bodies cut out, is the block "top". Blocks that run while modules are imported (outside
any test) are recorded per file as its import-time blocks.

Recording does not trace: a tracer (coverage's included) puts Python 3.11 into its slow tracing
mode for every frame, pytest's own included, and costs 1.6-2x the suite. Instead the project's
modules are compiled with one call per block entry, `__spruce_hit__(key)`, at the start of each
function of the block and after each point where a generator or coroutine of it resumes; the
call adds the key to a set that is taken between tests. The compiled code is kept in spruce's
cache directory (never in the project's __pycache__). Modules that spruce does not compile
(imported before it could, or compiled by pytest's assertion rewriting, as test files are) are
reported as whole files: a test depends on the whole of each such module its module refers to.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import hashlib
import importlib.abc
import importlib.machinery
import json
import marshal
import os
import sys
import types
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

_Hook = TypeVar("_Hook", bound=Callable[..., Any])


def _first(hook: _Hook) -> _Hook:
    """Marks a hook for pytest to call before others. spruce itself imports this module for its
    block functions, where pytest may not be installed."""
    try:
        import pytest
    except ImportError:
        return hook
    return pytest.hookimpl(tryfirst=True)(hook)


ENV_SETTINGS = "SPRUCE_SELECT"
HIT = "__spruce_hit__"
WHOLE_FILE = -1  # a dependency on every block of a file (never a CRC: those are unsigned)
with open(__file__, "rb") as _own:
    _PLUGIN_DIGEST = hashlib.sha256(_own.read()).hexdigest()
_settings: dict[str, Any] = {}
_carried: list[str] = []


def digest(data: bytes) -> str:
    """The content hash spruce's file set uses (blake2b, 16 bytes)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


BlockFunction = ast.FunctionDef | ast.AsyncFunctionDef


def _block_functions(
    tree: ast.Module, lines: Sequence[str]
) -> Iterator[tuple[BlockFunction, int, int, int]]:
    """(function, first line of its body, last line, CRC) per block, in source order."""

    def visit(node: ast.AST, prefix: str) -> Iterator[tuple[BlockFunction, int, int, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and child.body:
                first, last = child.body[0].lineno, child.end_lineno or child.body[-1].lineno
                text = "\n".join([prefix + child.name, *lines[first - 1 : last]])
                yield child, first, last, zlib.crc32(text.encode())
            elif isinstance(child, ast.ClassDef):
                yield from visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.stmt):
                yield from visit(child, prefix)

    yield from visit(tree, "")


def _top_crc(lines: Sequence[str], bodies: Sequence[tuple[int, int, int]]) -> int:
    cut: set[int] = set()
    for first, last, _ in bodies:
        cut.update(range(first, last + 1))
    top = "\n".join(line for number, line in enumerate(lines, 1) if number not in cut)
    return zlib.crc32(top.encode())


def file_blocks(source: bytes) -> tuple[int, list[tuple[int, int, int]]]:
    """(CRC of the top level with bodies cut out, [(first line, last line, CRC) per body])."""
    tree = ast.parse(source)
    lines = source.decode("utf-8", "replace").splitlines()
    bodies = [(first, last, crc) for _, first, last, crc in _block_functions(tree, lines)]
    return _top_crc(lines, bodies), bodies


# --- Compiling a module with a hit per block entry ---------------------------------------------

_SUSPENDS = (ast.Yield, ast.YieldFrom, ast.Await)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _suspends(nodes: Sequence[ast.AST | None]) -> bool:
    """Whether evaluating these nodes can suspend the running generator or coroutine (a nested
    function or lambda suspends its own frame, not this one)."""
    stack = [node for node in nodes if node is not None]
    while stack:
        node = stack.pop()
        if isinstance(node, _SUSPENDS):
            return True
        stack.extend(
            child for child in ast.iter_child_nodes(node) if not isinstance(child, _SCOPES)
        )
    return False


def _header(statement: ast.stmt) -> list[ast.AST | None] | None:
    """The expressions a compound statement evaluates itself; None for a simple statement."""
    match statement:
        case ast.If(test=test) | ast.While(test=test):
            return [test]
        case ast.For(target=target, iter=iterable):
            return [target, iterable]
        case ast.With(items=items):
            return list(items)
        case ast.Match(subject=subject):
            return [subject]
        case ast.AsyncFor() | ast.AsyncWith():
            return [ast.Await(value=ast.Constant(value=None))]  # each step may suspend
        case ast.Try() | ast.TryStar():
            return []
    return None


def _statement_lists(statement: ast.stmt) -> Iterator[tuple[ast.AST, str]]:
    for field in ("body", "orelse", "finalbody"):
        if isinstance(getattr(statement, field, None), list):
            yield statement, field
    for part in [*getattr(statement, "handlers", ()), *getattr(statement, "cases", ())]:
        yield part, "body"


class _Instrument(ast.NodeTransformer):
    """Puts `__spruce_hit__(key)` at the entry of every function and lambda of one block, and
    after every statement where one of its generators or coroutines resumes."""

    def __init__(self, key: int) -> None:
        self.key = key

    def _call(self) -> ast.expr:
        return ast.Call(
            func=ast.Name(id=HIT, ctx=ast.Load()), args=[ast.Constant(self.key)], keywords=[]
        )

    def _hit(self, near: ast.AST) -> ast.stmt:
        return ast.copy_location(ast.Expr(value=self._call()), near)

    def _body(self, statements: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for statement in statements:
            out.append(statement)
            if isinstance(statement, _SCOPES):
                continue
            header = _header(statement)
            if header is None:
                if _suspends([statement]):
                    out.append(self._hit(statement))
                continue
            resumes = _suspends(header)
            for owner, field in _statement_lists(statement):
                inner = self._body(getattr(owner, field))
                if resumes and inner:
                    inner.insert(0, self._hit(inner[0]))
                setattr(owner, field, inner)
            if resumes:
                out.append(self._hit(statement))
        return out

    def _function(self, node: BlockFunction) -> BlockFunction:
        self.generic_visit(node)
        body = self._body(node.body)
        first = body[0]
        docstring = (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        )
        body.insert(1 if docstring else 0, self._hit(first))
        node.body = body
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return self._function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        return self._function(node)

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        self.generic_visit(node)
        node.body = ast.BoolOp(op=ast.Or(), values=[self._call(), node.body])
        return node


def block_key(relative: str, crc: int) -> int:
    """The number a compiled block reports: unique per (file, block) within a run."""
    data = hashlib.blake2b(f"{relative}\0{crc}".encode(), digest_size=8).digest()
    return int.from_bytes(data, "big") >> 1


class CompiledModule:
    """A project module compiled with hits: its code and what spruce records of the file."""

    def __init__(
        self, code: types.CodeType, source_digest: str, top: int, keys: dict[int, int]
    ) -> None:
        self.code, self.digest, self.top, self.keys = code, source_digest, top, keys

    @classmethod
    def compile(cls, source: bytes, path: str, relative: str) -> CompiledModule:
        tree = ast.parse(source, path)
        lines = source.decode("utf-8", "replace").splitlines()
        found = list(_block_functions(tree, lines))
        keys: dict[int, int] = {}
        for function, _, _, crc in found:
            key = block_key(relative, crc)
            keys[key] = crc
            _Instrument(key).visit(function)
        ast.fix_missing_locations(tree)
        code = compile(tree, path, "exec", dont_inherit=True)
        top = _top_crc(lines, [(first, last, crc) for _, first, last, crc in found])
        return cls(code, digest(source), top, keys)

    def dumps(self) -> bytes:
        return marshal.dumps((_PLUGIN_DIGEST, self.digest, self.top, self.keys, self.code))

    @classmethod
    def loads(cls, data: bytes, source_digest: str) -> CompiledModule | None:
        try:
            form, kept_digest, top, keys, code = marshal.loads(data)
        except (EOFError, ValueError, TypeError):
            return None
        if form != _PLUGIN_DIGEST or kept_digest != source_digest:
            return None
        return cls(code, kept_digest, top, keys)


class _Recorder:
    """The compiled modules of this run and the keys their blocks report, taken per label (a
    test's nodeid, "" for import time and between tests)."""

    def __init__(self, root: str, code_cache: str | None) -> None:
        self.root = root
        self.code_cache = code_cache
        self.compiled: dict[str, CompiledModule] = {}  # relative path -> module
        self.block_of: dict[int, tuple[str, int]] = {}  # key -> (relative path, CRC)
        self.hits: set[int] = set()
        self.label = ""
        self.by_label: dict[str, list[frozenset[int]]] = {}
        self._interned: dict[frozenset[int], frozenset[int]] = {}
        self.preloaded = self.project_modules()
        self.caches: list[_WatchedCache] = []

    def relative(self, path: str) -> str | None:
        """The path within the project of one of its own Python files, else None."""
        relative = os.path.relpath(os.path.realpath(path), self.root).replace(os.sep, "/")
        if relative.startswith("../") or not relative.endswith(".py"):
            return None
        parts = relative.split("/")
        if any(
            part in ("site-packages", "dist-packages") or part.startswith(".") for part in parts
        ):
            return None  # a virtual environment's packages are not the project's code
        return relative

    def project_modules(self) -> dict[str, types.ModuleType]:
        """The project's modules imported now that spruce did not compile, by relative path."""
        found = {}
        for module in list(sys.modules.values()):
            path = getattr(module, "__file__", None)
            relative = self.relative(path) if isinstance(path, str) else None
            if relative is not None and relative not in self.compiled:
                found[relative] = module
        return found

    def code(self, path: str, relative: str, source: bytes) -> types.CodeType:
        cached = self._cache_path(path)
        module = _read_compiled(cached, digest(source)) if cached else None
        if module is None:
            module = CompiledModule.compile(source, path, relative)
            if cached is not None:
                with contextlib.suppress(OSError):  # not kept: only slower next time
                    _write_atomically(cached, module.dumps())
        self.compiled[relative] = module
        for key, crc in module.keys.items():
            self.block_of[key] = (relative, crc)
        return module.code

    def _cache_path(self, path: str) -> str | None:
        if not self.code_cache:
            return None
        # The code depends on this plugin, the interpreter, -O, the root (keys name files by
        # their path within it) and the file; its source digest is checked when it is read.
        name = "\0".join(
            [
                _PLUGIN_DIGEST,
                sys.version,
                str(sys.flags.optimize),
                self.root,
                os.path.realpath(path),
            ]
        )
        return os.path.join(self.code_cache, hashlib.sha256(name.encode()).hexdigest()[:32])

    def watch_caches(self, module: types.ModuleType, relative: str) -> None:
        """Note the functools caches (lru_cache, cache) of a module's functions and methods: a
        call the cache answers never enters the function, yet its result is the function's."""
        compiled = self.compiled.get(relative)
        if compiled is None:
            return
        for cached in _cached_functions(vars(module), module.__name__):
            code = getattr(getattr(cached, "__wrapped__", None), "__code__", None)
            constants = getattr(code, "co_consts", ())
            key = next((c for c in constants if type(c) is int and c in compiled.keys), None)
            answered = _cache_hits(cached)
            if key is not None and answered is not None:
                self.caches.append(_WatchedCache(cached, key, answered))

    def switch(self, label: str) -> None:
        """Give what ran since the last switch to the current label, then change labels."""
        for watched in self.caches:  # a cache that answered counts as its function running
            answered = _cache_hits(watched.cached)
            if answered is not None and answered != watched.answered:
                watched.answered = answered
                self.hits.add(watched.key)
        taken = self.by_label.setdefault(self.label, [])
        if self.hits:
            keys = frozenset(self.hits)
            self.hits.clear()
            taken.append(self._interned.setdefault(keys, keys))
        self.label = label
        self.by_label.setdefault(label, [])


class _WatchedCache:
    """A functools-cached function of the project, its block's key, and the calls its cache
    answered when last looked at."""

    def __init__(self, cached: Any, key: int, answered: int) -> None:
        self.cached, self.key, self.answered = cached, key, answered


def _read_compiled(path: str, source_digest: str) -> CompiledModule | None:
    try:
        with open(path, "rb") as handle:
            return CompiledModule.loads(handle.read(), source_digest)
    except OSError:
        return None


def _cache_hits(cached: Any) -> int | None:
    """How many calls a functools cache answered so far (None for another kind of cache)."""
    try:
        hits = cached.cache_info().hits
    except Exception:
        return None
    return hits if isinstance(hits, int) else None


def _cached_functions(namespace: dict[str, Any], module: str, depth: int = 0) -> Iterator[Any]:
    """The functools-cached functions of a namespace and of the classes it defines."""
    for value in list(namespace.values()):
        try:
            if callable(getattr(value, "cache_info", None)) and hasattr(value, "__wrapped__"):
                yield value
            elif isinstance(value, type) and value.__module__ == module and depth < 4:
                yield from _cached_functions(dict(vars(value)), module, depth + 1)
        except Exception:  # an object that fails when asked: not a cache
            continue


def _write_atomically(path: str, data: bytes) -> None:
    """Written whole, then renamed: a reader never sees half of it."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".part", "wb") as handle:
        handle.write(data)
    os.replace(path + ".part", path)


class _Loader(importlib.machinery.SourceFileLoader):
    """Loads a project module from the code compiled with hits."""

    def __init__(self, fullname: str, path: str, recorder: _Recorder, relative: str) -> None:
        super().__init__(fullname, path)
        self.recorder, self.relative = recorder, relative

    def exec_module(self, module: types.ModuleType) -> None:
        super().exec_module(module)
        self.recorder.watch_caches(module, self.relative)

    def get_code(self, fullname: str) -> types.CodeType:
        source = self.get_data(self.path)
        try:
            return self.recorder.code(self.path, self.relative, source)
        except Exception:  # it imports as usual, and is recorded as a whole file
            code = super().get_code(fullname)
            assert code is not None
            return code


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the project's own modules for `_Loader`; everything else imports as usual."""

    def __init__(self, recorder: _Recorder) -> None:
        self.recorder = recorder

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        spec = self._found_after_me(fullname, path, target)
        if spec is None or type(spec.loader) is not importlib.machinery.SourceFileLoader:
            return None
        relative = self.recorder.relative(spec.origin or "")
        if relative is None:
            return None
        spec.loader = _Loader(fullname, spec.origin or "", self.recorder, relative)
        return spec

    def _found_after_me(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None
    ) -> importlib.machinery.ModuleSpec | None:
        """The spec the import system would find without this finder: the path finder's, or an
        editable install's (setuptools maps a src/ layout's top package with a finder of its
        own, placed after the path finder)."""
        finders = list(sys.meta_path)
        for finder in finders[finders.index(self) + 1 :] if self in finders else finders:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if isinstance(spec, importlib.machinery.ModuleSpec):
                return spec
        return None


_recorder: _Recorder | None = None


@_first
def pytest_load_initial_conftests(early_config: Any) -> None:
    """Before the project's conftest files import anything: load the settings and, when this
    run records, compile what the project imports from now on with hits."""
    global _recorder
    path = os.environ.get(ENV_SETTINGS)
    if not path or _settings:
        return
    with open(path, encoding="utf-8") as handle:
        _settings.update(json.load(handle))
    pycache = _settings.get("pycache")
    if pycache and sys.dont_write_bytecode:
        # Bytecode stays out of the project, as asked, and is kept in spruce's cache instead:
        # otherwise pytest rewrites and compiles every test file again on every run.
        sys.pycache_prefix = pycache
        sys.dont_write_bytecode = False
        _drop_stale_bytecode(pycache, os.path.realpath(_settings["root"]))
    if not _settings.get("record"):
        return
    _recorder = _Recorder(os.path.realpath(_settings["root"]), _settings.get("code_cache"))
    setattr(builtins, HIT, _recorder.hits.add)
    # After pytest's assertion rewriting: the test files it compiles stay its own.
    finders = sys.meta_path
    rewriting = [i for i, f in enumerate(finders) if type(f).__name__ == "AssertionRewritingHook"]
    finders.insert(rewriting[0] + 1 if rewriting else 0, _Finder(_recorder))


def _drop_stale_bytecode(prefix: str, root: str) -> None:
    """Remove the kept bytecode of every project file changed since it was written. pytest
    trusts a file's size and mtime in whole seconds, so an edit of the same size within the
    second would otherwise run the old code; an edit always leaves the file newer than it."""
    mirror = os.path.join(prefix, os.path.relpath(root, os.path.sep))
    for directory, _, names in os.walk(mirror):
        source_directory = os.path.join(os.path.sep, os.path.relpath(directory, prefix))
        for name in names:
            source = os.path.join(source_directory, name.split(".", 1)[0] + ".py")
            kept = os.path.join(directory, name)
            try:
                if os.stat(source).st_mtime_ns >= os.stat(kept).st_mtime_ns:
                    os.unlink(kept)
            except OSError:
                continue  # its source is gone: Python and pytest ignore it


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    carry = set(_settings.get("carry") or ())
    if not carry:
        return
    kept: list[Any] = []
    left_out: list[Any] = []
    for item in items:
        (left_out if item.nodeid in carry else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept
        _carried.extend(item.nodeid for item in left_out)


def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    if _recorder is not None:  # before the test's setup: its fixtures count as its own
        _recorder.switch(nodeid)


def pytest_runtest_logfinish(nodeid: str, location: Any) -> None:
    if _recorder is not None:
        _recorder.switch("")


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    out = _settings.get("out")
    if not out:
        return
    workerinput = getattr(session.config, "workerinput", None)
    if workerinput is not None:
        out = f"{out}.{workerinput['workerid']}"
    elif getattr(session.config.option, "numprocesses", None):
        return  # pytest-xdist's controller: its workers run the tests and report
    report: dict[str, Any] = {"carried": _carried, "recorded": _recorder is not None}
    if _recorder is not None:
        _recorder.switch("")
        report.update(_dependencies(_recorder))
    _write_atomically(out, json.dumps(report).encode())


def _dependencies(recorder: _Recorder) -> dict[str, Any]:
    """Per project file its digest, top-level CRC and import-time blocks (`opaque` when spruce
    did not compile it); per test the blocks it executed, file by file."""
    files: dict[str, Any] = {
        relative: {"digest": module.digest, "top": module.top, "import": []}
        for relative, module in recorder.compiled.items()
    }
    uncompiled = {
        relative: module
        for relative, module in {**recorder.preloaded, **recorder.project_modules()}.items()
        if relative not in recorder.compiled
    }
    for relative in uncompiled:
        try:
            with open(os.path.join(recorder.root, relative), "rb") as handle:
                source_digest = digest(handle.read())
        except OSError:
            continue
        files[relative] = {"digest": source_digest, "top": 0, "import": [], "opaque": True}
    refers = _references(uncompiled)
    tests: dict[str, dict[str, list[int]]] = {}
    for label, taken in recorder.by_label.items():
        per_file: dict[str, set[int]] = {}
        for keys in taken:
            for key in keys:
                relative, crc = recorder.block_of[key]
                per_file.setdefault(relative, set()).add(crc)
        deps = {relative: sorted(crcs) for relative, crcs in per_file.items()}
        if not label:
            for relative, crcs in deps.items():
                files[relative]["import"] = crcs
            continue
        for other in refers.get(label.split("::")[0], ()):
            deps[other] = [WHOLE_FILE]
        tests[label] = deps
    return {"files": files, "tests": tests}


def _references(uncompiled: dict[str, types.ModuleType]) -> dict[str, set[str]]:
    """Per uncompiled module (a test file, mostly), the other uncompiled project modules its
    names come from (an imported helper, a base class): a change there can change its tests."""
    by_name = {module.__name__: relative for relative, module in uncompiled.items()}
    refers: dict[str, set[str]] = {}
    for relative, module in uncompiled.items():
        names: set[str] = set()
        for value in list(vars(module).values()):
            try:
                if isinstance(value, types.ModuleType):
                    names.add(value.__name__)
                elif isinstance(value, type):
                    names.update(str(base.__module__) for base in value.__mro__)
                else:
                    names.add(str(getattr(value, "__module__", "")))
            except Exception:  # a lazy proxy that fails when asked: it names no module
                continue
        found = {by_name[name] for name in names if name in by_name} - {relative}
        if found:
            refers[relative] = found
    return refers
