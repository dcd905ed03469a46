"""Nothing the zoo reads can run code: no eval/exec, no pickle of corpus files, checkpoints
unpickled with weights_only (a crafted checkpoint is refused), YAML read safely. Checked on the
source's syntax tree, so a new call site fails here."""
from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "zoo").rglob("*.py"))


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else (
                f"{getattr(f.value, 'id', getattr(f.value, 'attr', '?'))}.{f.attr}" if isinstance(f, ast.Attribute) else "?")
            yield name, node


def _kw(node, name):
    return next((k.value for k in node.keywords if k.arg == name), None)


def test_no_code_runs_from_configs_corpora_or_checkpoints():
    found = []
    for src in SOURCES:
        for name, node in _calls(ast.parse(src.read_text(encoding="utf-8"))):
            where = f"{src.relative_to(ROOT)}:{node.lineno}"
            if name in ("eval", "exec") or name in ("pickle.load", "pickle.loads", "joblib.load", "yaml.unsafe_load"):
                found.append(f"{where}: {name}")
            elif name == "yaml.load" and not isinstance(_kw(node, "Loader"), ast.Attribute):
                found.append(f"{where}: yaml.load without a safe Loader")
            elif name == "np.load" and isinstance(_kw(node, "allow_pickle"), ast.Constant) and _kw(node, "allow_pickle").value:
                found.append(f"{where}: np.load(allow_pickle=True)")
            elif name == "torch.load":
                wo = _kw(node, "weights_only")
                # True, or a variable that is True unless the user passed trust=True (load_module)
                if wo is None or (isinstance(wo, ast.Constant) and wo.value is not True):
                    found.append(f"{where}: torch.load without weights_only")
    assert not found, "\n".join(found)


class Payload:
    def __reduce__(self):
        return (print, ("pwned",))


def test_a_checkpoint_with_pickled_code_is_refused(tmp_path, capsys):
    import zoo
    from zoo.errors import ZooUserError

    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"_class_path": "zoo.models.AudioCNN"}, "x": Payload()}, path)
    with pytest.raises(ZooUserError, match="could run arbitrary code"):
        zoo.load(str(path))
    assert "pwned" not in capsys.readouterr().out
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
