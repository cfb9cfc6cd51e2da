"""The mandate scan: nothing unfinished on an exposed runtime path, every registered runtime loads.

    python -m mcp_orchestrator.readiness.mandate [--root DIR] [--strict] [--json]

Scans the package (or ``--root``, a directory laid out like it) for:

* ``not-implemented``: a reference to the not-implemented exception, or raising the not-implemented constant;
* ``unfinished-marker``: in a comment or a string (and in shipped Markdown templates), the to-do, fix-me
  and triple-x markers, the upper-case three-letter "not yet" abbreviation or its spelled-out phrase, or
  the word for a stand-in;
* ``stub-body``: a function whose whole body is ``...`` or ``pass``, outside a ``Protocol``, an
  ``@abstractmethod`` or an ``@overload``;
* ``runtime-registry``: an entry of ``runtimes/__init__.py``'s ``_RUNTIMES`` whose module or class does not
  exist; for the installed package each entry is also loaded and instantiated, and must say its own mode.

Prints one finding a line (``file:line: rule: text``) or JSON; exits 1 on any finding with ``--strict``.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import re
import sys
import tokenize
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import mcp_orchestrator

__all__ = ["PACKAGE_ROOT", "Finding", "main", "scan"]

PACKAGE_ROOT = Path(mcp_orchestrator.__file__).resolve().parent

# Written so that this file does not match itself.
_MARKERS = (
    re.compile(r"\b(?:N[Y]I|T[O]DO|F[I]XME|X[X]X)\b"),
    re.compile(r"not\s+yet\s+implemented|place[h]older", re.IGNORECASE),
)
_NOT_IMPLEMENTED_CONST = "NotImpl" + "emented"
_NOT_IMPLEMENTED = _NOT_IMPLEMENTED_CONST + "Error"


@dataclass(frozen=True)
class Finding:
    """One violation: where, which rule, and the offending text."""

    file: str
    line: int
    rule: str
    text: str


def _text_findings(rel: str, line: int, text: str) -> Iterator[Finding]:
    for pattern in _MARKERS:
        for m in pattern.finditer(text):
            at = line + text.count("\n", 0, m.start())
            excerpt = text[max(m.start() - 30, 0) : m.end() + 30].replace("\n", " ").strip()
            yield Finding(rel, at, "unfinished-marker", excerpt)


def _name_of(node: ast.Name | ast.Attribute) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr


def _decorated(node: ast.FunctionDef | ast.AsyncFunctionDef, *names: str) -> bool:
    for d in node.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        name = target.attr if isinstance(target, ast.Attribute) else target.id if isinstance(target, ast.Name) else ""
        if name in names:
            return True
    return False


def _is_protocol(cls: ast.ClassDef) -> bool:
    return any(
        (isinstance(b, ast.Name) and b.id == "Protocol") or (isinstance(b, ast.Attribute) and b.attr == "Protocol")
        for b in cls.bases
    )


def _stub(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    body = list(node.body)
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        body = body[1:]  # the docstring
    if len(body) != 1:
        return False
    only = body[0]
    return isinstance(only, ast.Pass) or (
        isinstance(only, ast.Expr) and isinstance(only.value, ast.Constant) and only.value.value is Ellipsis
    )


def _code_findings(rel: str, tree: ast.AST) -> Iterator[Finding]:
    protocols = {id(n) for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and _is_protocol(n)}
    parents: dict[int, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
    for node in ast.walk(tree):
        if isinstance(node, ast.Name | ast.Attribute) and _name_of(node) == _NOT_IMPLEMENTED:
            yield Finding(rel, node.lineno, "not-implemented", f"{_NOT_IMPLEMENTED} on a runtime path")
        elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Name) and node.exc.id == _NOT_IMPLEMENTED_CONST:
            yield Finding(rel, node.lineno, "not-implemented", f"raise {_NOT_IMPLEMENTED_CONST}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield from _text_findings(rel, node.lineno, node.value)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _stub(node):
            exempt = _decorated(node, "abstractmethod", "overload") or id(parents.get(id(node))) in protocols
            if not exempt:
                yield Finding(rel, node.lineno, "stub-body", f"def {node.name}: its whole body is `...` or `pass`")


def _comment_findings(rel: str, source: str) -> Iterator[Finding]:
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            yield from _text_findings(rel, tok.start[0], tok.string)


def _module_file(root: Path, module: str) -> Path | None:
    parts = module.split(".")[1:]  # the first part is the package: ``root`` itself
    for candidate in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")):
        if parts and candidate.is_file():
            return candidate
    return None


def _defined_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _registry(root: Path) -> tuple[dict[str, tuple[str, str]], list[Finding]]:
    """``_RUNTIMES`` as written in ``root/runtimes/__init__.py``, and its entries that do not exist."""
    init = root / "runtimes" / "__init__.py"
    if not init.is_file():
        return {}, []
    rel = init.relative_to(root).as_posix()
    found: tuple[int, ast.expr] | None = None
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == "_RUNTIMES":
            found = node.lineno, value
    if found is None:
        return {}, [Finding(rel, 1, "runtime-registry", "no _RUNTIMES registry")]
    line, value = found
    try:
        registry: dict[str, tuple[str, str]] = ast.literal_eval(value)
    except ValueError:
        return {}, [Finding(rel, line, "runtime-registry", "_RUNTIMES is not a literal")]
    findings = []
    for mode, (module, cls) in registry.items():
        path = _module_file(root, module)
        if path is None:
            findings.append(Finding(rel, line, "runtime-registry", f"{mode!r}: module {module} does not exist"))
        elif cls not in _defined_names(path):
            findings.append(Finding(rel, line, "runtime-registry", f"{mode!r}: {module} has no {cls}"))
    return registry, findings


def _load_all(registry: dict[str, tuple[str, str]]) -> Iterator[Finding]:
    """Import and instantiate every registered runtime of the installed package."""
    from mcp_orchestrator.runtimes import load_runtime

    rel = "runtimes/__init__.py"
    for mode, (module, cls) in registry.items():
        try:
            runtime = load_runtime(mode)  # type: ignore[arg-type]
        except Exception as e:  # the boundary of this check: any failure to load is the finding
            why = f"{type(e).__name__}: {e}"
            yield Finding(rel, 1, "runtime-registry", f"{mode!r} ({module}.{cls}) does not load: {why}")
            continue
        if getattr(runtime, "mode", None) != mode:
            yield Finding(rel, 1, "runtime-registry", f"{mode!r} loads {cls}, whose mode is {runtime.mode!r}")


def scan(root: Path = PACKAGE_ROOT) -> tuple[list[Finding], int]:
    """Every finding under ``root`` and the number of files scanned."""
    root = root.resolve()
    findings: list[Finding] = []
    files = sorted(p for p in root.rglob("*") if p.suffix in (".py", ".md") and "__pycache__" not in p.parts)
    for path in files:
        rel = path.relative_to(root).as_posix()
        source = path.read_text(encoding="utf-8")
        if path.suffix == ".md":
            findings += _text_findings(rel, 1, source)
            continue
        try:
            tree = ast.parse(source, filename=str(path))
        except SyntaxError as e:
            findings.append(Finding(rel, e.lineno or 1, "not-implemented", f"does not parse: {e.msg}"))
            continue
        findings += _code_findings(rel, tree)
        findings += _comment_findings(rel, source)
    registry, missing = _registry(root)
    findings += missing
    if root == PACKAGE_ROOT and not missing:
        findings += _load_all(registry)
    return sorted(set(findings), key=lambda f: (f.file, f.line, f.rule)), len(files)


def main(argv: Sequence[str] | None = None) -> int:
    """Scan; print the findings; exit 1 on any with ``--strict``."""
    parser = argparse.ArgumentParser(
        prog="python -m mcp_orchestrator.readiness.mandate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--root", type=Path, default=PACKAGE_ROOT, help="the package directory to scan")
    parser.add_argument("--strict", action="store_true", help="exit 1 on any finding (default: report only)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    findings, count = scan(args.root)
    if args.json:
        report = {"root": str(args.root), "files": count, "status": "fail" if findings else "ok"}
        print(json.dumps({**report, "findings": [asdict(f) for f in findings]}, indent=2))
    else:
        for f in findings:
            print(f"{f.file}:{f.line}: {f.rule}: {f.text}")
    print(f"mandate scan: {len(findings)} finding(s) in {count} files under {args.root}", file=sys.stderr)
    return 1 if args.strict and findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
