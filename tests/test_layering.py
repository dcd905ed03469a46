"""Imports run one way: data <- nn <- models <- inference / cli / ablate (docs/extending.md).

Every module under zoo/ is parsed (not imported) and each import, also one inside a function,
is checked against the layer it lives in, so a reach back up the stack fails here with its file
and line instead of showing up later as an import cycle or a heavy import in a light command.
"""
import ast
from pathlib import Path

ZOO = Path(__file__).resolve().parents[1] / "zoo"

# layer (the package under zoo/) -> zoo packages its modules must not import
# zoo.live (segmenter, stream, server) sits on top of zoo.inference's Predictor; inference reaches it
# only lazily, where `infer --segment vad` / predict_long(segment="vad") *is* the stream run over
# the whole file (one code path, so streamed == offline by construction).
FORBIDDEN = {
    "data": ("zoo.nn", "zoo.models", "zoo.inference", "zoo.live", "zoo.cli", "zoo.cli_support", "zoo.ablate"),
    "nn": ("zoo.models", "zoo.inference", "zoo.live", "zoo.cli", "zoo.cli_support", "zoo.ablate"),
    "models": ("zoo.inference", "zoo.live", "zoo.cli", "zoo.cli_support", "zoo.ablate"),
    "live": ("zoo.cli", "zoo.cli_support", "zoo.ablate"),
}
# modules at the very bottom: every layer imports them, they import nothing of the zoo
BOTTOM = ("paths.py",)

# Known violations on their way out, as (file under zoo/, imported module). Each entry is removed
# by the change that fixes it; the test fails while a listed import is still allowed but gone.
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ZOO.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path):
    """(line, absolute module name) of every import in ``path``; ``from X import y`` also yields
    ``X.y`` (y may be a submodule)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def is_under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations() -> list[tuple[str, int, str]]:
    """(file under zoo/, line, imported module) of every import against the layering."""
    found = []
    for path in sorted(ZOO.rglob("*.py")):
        rel = path.relative_to(ZOO).as_posix()
        layer = rel.split("/")[0]
        banned = ("zoo",) if rel in BOTTOM else FORBIDDEN.get(layer, ())
        seen = set()
        for line, module in imported(path):
            bad = next((b for b in banned if is_under(module, b)), None)
            if bad and (line, bad) not in seen:
                seen.add((line, bad))
                found.append((rel, line, module))
    return found


def test_the_scan_sees_every_layer_and_resolves_relative_imports():
    # the rules are only as good as the scan: it must find the packages and read `from ..x import y`
    layers = {p.relative_to(ZOO).parts[0] for p in ZOO.rglob("*.py")}
    assert set(FORBIDDEN) <= layers
    found = dict(((line, m) for line, m in imported(ZOO / "models" / "late_fusion.py")))
    assert any(is_under(m, "zoo.nn.fusion") for m in found.values())  # `from ..nn.fusion import ...`
    assert any(is_under(m, "zoo.models.base") for m in found.values())  # `from .base import ...`


def test_imports_run_one_way():
    found = violations()
    unexpected = [f"zoo/{rel}:{line} imports {module}" for rel, line, module in found
                  if (rel, module) not in KNOWN_VIOLATIONS]
    assert not unexpected, ("imports against the layering (data <- nn <- models <- inference / cli; "
                            "zoo/paths.py imports nothing of the zoo):\n  " + "\n  ".join(unexpected))


def test_known_violations_are_still_there():
    """An entry of KNOWN_VIOLATIONS whose import is gone must be deleted (the allowance would
    otherwise let the import come back unnoticed)."""
    present = {(rel, module) for rel, _, module in violations()}
    stale = sorted(KNOWN_VIOLATIONS - present)
    assert not stale, f"fixed, so remove from KNOWN_VIOLATIONS in tests/test_layering.py: {stale}"


def test_the_cache_folder_default_is_written_once(tmp_path, monkeypatch):
    # the variable is read in zoo/paths.py only ...
    readers = [p.relative_to(ZOO).as_posix() for p in ZOO.rglob("*.py")
               if any(isinstance(n, ast.Constant) and n.value == "ZOO_CACHE_DIR"
                      for n in ast.walk(ast.parse(p.read_text(encoding="utf-8"))))]
    assert readers == ["paths.py"]
    # ... and every cache follows it
    from zoo.data.audio import default_cache_dir
    from zoo.data.corpora.synthetic import Synthetic
    from zoo.data.text import _default_dir
    from zoo.nn.cache import default_embedding_cache_dir
    from zoo.paths import cache_dir

    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path))
    assert cache_dir("audio") == default_cache_dir() / "audio" == tmp_path / "audio"
    assert default_embedding_cache_dir() == tmp_path / "embeddings" and _default_dir() == tmp_path / "tokenizers"
    assert Path(Synthetic(size=10).root).parent == tmp_path
    monkeypatch.setenv("ZOO_CACHE_DIR", "")  # empty: unset, not the working directory
    assert cache_dir() == Path.home() / ".cache" / "zoo"


# -- module size ---------------------------------------------------------------------------------------
#: a module longer than this holds several concerns unless its docstring says why it does not
MAX_LINES = 500
REASON = "Longer than 500 lines because"


def long_modules_without_reason(root: Path = ZOO) -> list[str]:
    """``file (n lines)`` for every module under ``root`` over MAX_LINES lines whose docstring has
    no line starting with REASON."""
    found = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        n = len(text.splitlines())
        if n <= MAX_LINES:
            continue
        doc = ast.get_docstring(ast.parse(text, filename=str(path))) or ""
        if not any(line.strip().startswith(REASON) for line in doc.splitlines()):
            found.append(f"zoo/{path.relative_to(root).as_posix()} ({n} lines)")
    return found


def test_long_modules_state_why(tmp_path):
    # the check itself: a long module passes only with the reason in its docstring, not in a comment
    body = "x = 1\n" * (MAX_LINES + 1)
    (tmp_path / "long.py").write_text(f'"""A module."""\n# {REASON} of a comment\n{body}', encoding="utf-8")
    (tmp_path / "why.py").write_text(f'"""A module.\n\n{REASON} it must be.\n"""\n{body}', encoding="utf-8")
    (tmp_path / "short.py").write_text('"""A module."""\n' + "x = 1\n" * (MAX_LINES - 1), encoding="utf-8")
    assert long_modules_without_reason(tmp_path) == [f"zoo/long.py ({MAX_LINES + 3} lines)"]

    found = long_modules_without_reason()
    assert not found, (f"modules over {MAX_LINES} lines: split them along their seams (pure moves), or "
                       f"state the reason at the top of the docstring in a line starting {REASON!r}:\n  "
                       + "\n  ".join(found))
