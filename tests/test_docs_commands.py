"""Every shell command in README.md and docs/*.md parses with the real CLI and names only files
that exist, so the docs cannot drift from the code.

What is run: each ``python -m zoo fit|validate|test|predict ...`` with ``--print_config``
appended (or as written when it asks for ``--help``), in this process; each other zoo command
through its own argparse parser, stopped right after parsing; ``make TARGET``, ``pip install
'.[EXTRA]'``, ``python SCRIPT.py`` and ``bash SCRIPT.sh`` are checked against the Makefile, pyproject.toml and the
tree. Nothing trains, downloads or writes.

Which files must exist: every argument that looks like a path (it has a ``/`` or a file
suffix), except
- the values of output options (``--out``, ``--plot``, ``--predictions.path``, ``--eval_dir``, the benchmark's ``--json`` / ``--markdown``, ``--exclude-list``),
- placeholders for the user's data and models: paths under ``/data/``, ``/path/to/``,
  ``/models/``, and the example file names in ``EXAMPLE_FILES``,
- what the docs' own commands create: ``runs/...`` (a fit's run folder; a ``--config`` there is
  replaced by the resolved config of a shipped fit), ``data/...`` (``synth`` / ``manifest``
  outputs), ``exported/``,
- hub ids (``--asr``, ``--model.init_args.pretrained``) and registry names (``--model``).
A fragment ``python -m zoo fit ...`` takes the arguments of the block's previous command.
"""
import argparse
import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LIGHTNING = ("fit", "validate", "test", "predict")
OUTPUT_OPTIONS = {"--out", "--plot", "--predictions.path", "--eval_dir", "--json", "--markdown", "--exclude-list"}
NOT_PATHS = {"--asr", "--model.init_args.pretrained", "--model.init_args.tokenizer", "--text", "--example-text"}
PLACEHOLDER_PREFIXES = ("/data/", "/path/to/", "/models/", "runs/", "data/", "exported", ".venv/",
                        "http://", "https://")
# the user's own files in the examples
EXAMPLE_FILES = {"a.wav", "b.wav", "b.flac", "long.wav", "talk.wav", "clip.wav", "t.csv", "my.csv",
                 "audio_dir/", "preds.jsonl", "preds.csv", "track.png", "model.onnx", "FILE.csv"}
SUFFIXES = (".yaml", ".yml", ".csv", ".tsv", ".jsonl", ".json", ".wav", ".flac", ".ckpt", ".onnx", ".png",
            ".py", ".md")
EXTERNAL = {"chromium", "cp", "wandb", "huggingface-cli", "sha256sum", "cd", "ls", "source", "cat", "sbatch", "eval"}


def _blocks(md: Path):
    """(line number, text) of every fenced bash/sh/shell block."""
    lines = md.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^\s*```(\w*)\s*$", lines[i])
        if m:
            lang, start, body = m.group(1), i + 1, []
            i += 1
            while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
                body.append(lines[i])
                i += 1
            if lang in ("bash", "sh", "shell"):
                yield start + 1, "\n".join(body)
        i += 1


def _commands(text: str) -> list[list[str]]:
    """Token lists of the block's commands: continuations joined, comments, here-documents and
    redirections dropped, split at ``&&``, ``;``, ``|`` and a trailing ``&``."""
    out, heredoc = [], None
    for line in text.replace("\\\n", " ").splitlines():
        if heredoc is not None:  # the body of a here-document is a file's text, not commands
            heredoc = None if line.strip() == heredoc else heredoc
            continue
        m = re.search(r"<<-?\s*'?\"?(\w+)", line)
        if m:
            heredoc, line = m.group(1), line[:m.start()]
        lex = shlex.shlex(line, posix=True, punctuation_chars=";&|<>")
        lex.whitespace_split, lex.commenters = True, "#"
        cmd, toks = [], list(lex)
        i = 0
        while i < len(toks):
            tok = toks[i]
            if tok in ("&&", ";", "|", "||", "&"):
                if cmd:
                    out.append(cmd)
                cmd = []
            elif tok in (">", ">>", "<", "2>"):
                i += 1  # the redirection's file
            else:
                cmd.append(tok)
            i += 1
        if cmd:
            out.append(cmd)
    return out


def _cases():
    for md in DOCS:
        for line, text in _blocks(md):
            prev: dict[str, list[str]] = {}
            for cmd in _commands(text):
                if cmd[:3] == ["python", "-m", "zoo"] and len(cmd) > 3:
                    args = cmd[3:]
                    if args[1:2] == ["..."]:  # a fragment: the block's previous command of that kind
                        args = args[:1] + prev.get(args[0], [args[0]])[1:] + args[2:]
                    prev[args[0]] = args
                    cmd = cmd[:3] + args
                yield pytest.param(md.name, line, cmd, id=f"{md.name}:{line}:{' '.join(cmd)[:60]}")


def _registry_names() -> set[str]:
    reg = yaml.safe_load((ROOT / "checkpoints/registry.yaml").read_text(encoding="utf-8"))
    entries = reg.get("checkpoints", reg) if isinstance(reg, dict) else reg
    return {e["name"] for e in entries}


def _missing_files(cmd: list[str]) -> list[str]:
    missing, skip_next = [], False
    names = _registry_names()
    for i, tok in enumerate(cmd):
        opt = cmd[i - 1] if i else ""
        if skip_next:
            skip_next = False
            continue
        if tok.startswith("--") and "=" in tok:
            opt, tok = tok.split("=", 1)
        elif tok.startswith("-"):
            continue
        if opt in OUTPUT_OPTIONS or opt in NOT_PATHS or (opt == "--model" and tok in names):
            continue
        if opt == "--text":  # nargs: every following non-option token is a transcript
            continue
        looks_like_path = "/" in tok or tok.endswith(SUFFIXES)
        if not looks_like_path or tok.startswith(PLACEHOLDER_PREFIXES) or tok in EXAMPLE_FILES:
            continue
        if "*" in tok or "{" in tok:
            continue
        if not (ROOT / tok).exists():
            missing.append(tok)
    return missing


class _Parsed(BaseException):
    """Raised right after an argparse parser accepted the arguments: nothing else runs."""


@pytest.fixture(scope="module")
def run_config(tmp_path_factory):
    """A config as `fit` writes it into runs/zoo/version_N/config.yaml (the docs' test/predict
    commands read one)."""
    from zoo.cli import build_cli

    out = tmp_path_factory.mktemp("run") / "config.yaml"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(SystemExit):
        build_cli(["fit", "--config", str(ROOT / "configs/data/synthetic.yaml"), "--config",
                   str(ROOT / "configs/model/audio_cnn.yaml"), "--print_config"])
    out.write_text(buf.getvalue(), encoding="utf-8")
    return str(out)


@pytest.mark.parametrize("doc,line,cmd", list(_cases()))
def test_documented_command(doc, line, cmd, run, run_config, monkeypatch):
    where = f"{doc} line {line}: {' '.join(cmd)}"
    missing = [] if re.match(r"^\w+=", cmd[0]) else _missing_files(cmd)
    assert not missing, f"{where}: names files that do not exist: {missing}"
    if cmd[0] == "make":
        targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), flags=re.M))
        assert set(cmd[1:]) <= targets, where
        return
    if cmd[:2] == ["pip", "install"]:
        extras = yaml.safe_load((ROOT / "pyproject.toml").read_text().split("[project.optional-dependencies]")[1]
                                .split("\n[")[0].replace(" = ", ": "))
        for tok in cmd[2:]:
            m = re.match(r"^\.\[([\w,]+)\]$", tok)
            if m:
                assert set(m.group(1).split(",")) <= set(extras), where
        return
    if cmd[0] == "python" and len(cmd) > 1 and cmd[1].endswith(".py"):
        assert (ROOT / cmd[1]).is_file(), where
        return
    if cmd[0] == "bash" and len(cmd) > 1 and cmd[1].endswith(".sh"):
        assert (ROOT / cmd[1]).is_file(), where
        return
    if cmd[0] in EXTERNAL or cmd[:2] == ["python", "-c"] or re.match(r"^\w+=", cmd[0]):
        return
    bench = cmd[:3] == ["python", "-m", "benchmarks.run"]
    assert bench or cmd[:3] == ["python", "-m", "zoo"], f"{where}: a command this test does not know how to check"
    args = cmd[3:]
    if not bench and args and args[0] in LIGHTNING:
        args = [run_config if (a.startswith("runs/") and a.endswith(".yaml")) else a for a in args]
        asks_help = any(a in ("-h", "--help") or a.endswith(".help") for a in args)
        r = run(*args, *([] if asks_help or "--print_config" in args else ["--print_config"]))
        assert r.returncode == 0, f"{where}:\n{r.stderr[-3000:]}"
        return

    original = argparse.ArgumentParser.parse_args
    original_known = argparse.ArgumentParser.parse_known_args
    inside_parse_args = []

    def parse_and_stop(self, *a, **kw):
        inside_parse_args.append(self)
        try:
            ns = original(self, *a, **kw)  # unknown options are still refused here
        finally:
            inside_parse_args.pop()
        raise _Parsed(ns)

    def parse_known_and_stop(self, *a, **kw):
        # commands that take fit-style --data.KEY options (check) parse the rest themselves, later
        out = original_known(self, *a, **kw)
        if inside_parse_args:
            return out
        raise _Parsed(out[0])

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_and_stop)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", parse_known_and_stop)
    if bench:
        monkeypatch.syspath_prepend(str(ROOT))
        from benchmarks.run import main
    else:
        from zoo.cli import main

    try:
        main(args)
    except _Parsed:
        return
    except SystemExit as e:
        assert e.code in (0, None), f"{where}: exit {e.code}"
        return
    if args and args[0] not in ("-h", "--help"):
        pytest.fail(f"{where}: the command did not parse its arguments")


def test_docs_and_configs_assume_no_surroundings():
    """No documented path reaches outside the clone (the repository's own neighbours)."""
    files = [*DOCS, *(ROOT / "configs").rglob("*.yaml")]
    bad = [str(p.relative_to(ROOT)) for p in files if "../shared" in p.read_text(encoding="utf-8")]
    assert not bad, f"paths outside the clone in: {bad}"


def test_the_extractor_sees_the_documented_commands():
    """The extraction itself: continuations, comments, fragments (a test that cannot pass vacuously)."""
    cmds = _commands("python -m zoo fit --config a.yaml \\\n  --x 1   # note\nmake demo && make test\n")
    assert cmds == [["python", "-m", "zoo", "fit", "--config", "a.yaml", "--x", "1"], ["make", "demo"],
                    ["make", "test"]]
    assert _commands("python -m zoo ablate --dry-run > s.txt\ncat > x.sh <<'EOF'\nnot a command\nEOF\nls\n") == [
        ["python", "-m", "zoo", "ablate", "--dry-run"], ["cat"], ["ls"]]
    cases = [p.values[2] for p in _cases()]
    assert len(cases) > 40
    assert any(c[3:4] == ["fit"] for c in cases) and any(c[3:4] == ["infer"] for c in cases)
    assert _missing_files(["python", "-m", "zoo", "fit", "--config", "configs/nope.yaml"]) == ["configs/nope.yaml"]
    assert _missing_files(["python", "-m", "zoo", "infer", "--out", "new/preds.csv", "/data/aihub"]) == []
