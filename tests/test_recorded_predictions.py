"""Every shipped checkpoint predicts what it predicted when its outputs were recorded.

Refactors move code (the house issue: pure moves and renames); this pins behaviour end to end:
load by name, build the inputs, forward, probabilities and dimensions. The inputs are built
here from a seeded generator (no other zoo code), so the recording cannot drift with the code
under test. Re-record only for a deliberate change of a checkpoint or of a model's numerics:
`python tests/test_recorded_predictions.py --record` (and say why in the commit).
"""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

RECORDED = Path(__file__).with_name("data") / "recorded_predictions.json"
TEXTS = ["나 어제 헤어졌어 너무 슬프다", "와 진짜 합격했어 너무 좋아"]
SR = 16000


def _clips() -> list[np.ndarray]:
    """Two voiced-sounding clips: a gliding harmonic tone with an envelope, plus a little noise."""
    rng = np.random.default_rng(2026)
    out = []
    for f0, dur in ((140.0, 2.3), (260.0, 1.7)):
        t = np.arange(int(dur * SR)) / SR
        pitch = f0 * (1 + 0.15 * np.sin(2 * np.pi * 0.7 * t))
        phase = 2 * np.pi * np.cumsum(pitch) / SR
        wav = sum(np.sin(k * phase) / k for k in range(1, 8))
        env = np.clip(np.sin(np.pi * t / dur) * 1.5, 0, 1) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t) ** 2)
        out.append((0.2 * env * wav + 0.003 * rng.standard_normal(t.size)).astype(np.float32))
    return out


def _predict(name: str) -> list[dict]:
    import zoo

    m = zoo.load(name)
    clips = _clips()
    audios = clips if m.uses_audio else [None] * len(clips)
    texts = TEXTS if m.uses_text else None
    rows = m.predict_batch(audios, texts, sample_rate=SR)
    return [{"label": r["label"], "probs": r["probs"], "dims": r.get("dims", {})} for r in rows]


def _names() -> list[str]:
    return sorted(json.loads(RECORDED.read_text(encoding="utf-8"))) if RECORDED.is_file() else []


@pytest.mark.parametrize("name", _names())
def test_shipped_checkpoint_predicts_as_recorded(name):
    want = json.loads(RECORDED.read_text(encoding="utf-8"))[name]
    got = _predict(name)
    for g, w in zip(got, want, strict=True):
        assert g["label"] == w["label"], name
        assert g["probs"] == pytest.approx(w["probs"], abs=1e-4), name
        assert g["dims"] == pytest.approx(w["dims"], abs=1e-4), name


def test_every_registry_entry_is_recorded():
    import zoo

    assert set(zoo.list_checkpoints()) == set(_names())


if __name__ == "__main__" and "--record" in sys.argv:
    import zoo

    RECORDED.parent.mkdir(exist_ok=True)
    RECORDED.write_text(json.dumps({n: _predict(n) for n in sorted(zoo.list_checkpoints())}, ensure_ascii=False,
                                   indent=1) + "\n", encoding="utf-8")
    print("recorded", RECORDED)
