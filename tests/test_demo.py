"""The demo page, for real: a gradio server on 127.0.0.1, called through gradio_client with a
generated wav; the page must say what zoo.load(...).predict says on the same audio."""
import socket

import numpy as np
import pytest
import soundfile as sf

import zoo

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    from zoo.inference.demo import build_demo

    app = build_demo("late-fusion-synth")
    port = _free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


def _confidences(label_value) -> dict:
    return {c["label"]: c["confidence"] for c in label_value["confidences"]}


@pytest.mark.parametrize("checkpoint,text", [("late-fusion-synth", "아 진짜 너무 신난다"),
                                             ("late-fusion-synth", ""),
                                             ("audio-cnn-synth", ""),
                                             ("korean-tts-fusion", "정말 화가 나서 참을 수가 없어")])
def test_page_predicts_what_the_python_api_predicts(server, tmp_path, checkpoint, text):
    from gradio_client import Client, handle_file

    rng = np.random.default_rng(0)
    t = np.arange(int(2.5 * 16000)) / 16000
    wav = 0.3 * np.sin(2 * np.pi * (180 + 40 * np.sin(2 * np.pi * 3 * t)) * t) + 0.01 * rng.standard_normal(t.size)
    path = tmp_path / "speech.wav"
    sf.write(path, wav.astype(np.float32), 16000)
    client = Client(server, verbose=False)
    probs, label, info, _plane = client.predict(handle_file(str(path)), text, checkpoint, [], api_name="/predict")
    model = zoo.load(checkpoint)
    want = model.predict(str(path), text=text or None)
    assert label == want["label"] == probs["label"]
    got = _confidences(probs)
    assert set(got) == set(want["probs"])
    assert got == pytest.approx(want["probs"], abs=1e-5)
    assert "reads " + ", ".join(model.module.inputs) in info  # audio, or features computed from it


def test_page_adapts_a_per_speaker_model_to_the_attached_clips(server, tmp_path):
    """emodb-compare (normalize: speaker): with other clips of the voice attached the page says
    what zoo.load(...).adapt([clip, *others]).predict(clip) says; without them, the plain path."""
    from gradio_client import Client, handle_file

    rng = np.random.default_rng(1)
    t = np.arange(int(1.5 * 16000)) / 16000
    paths = []
    for i, f0 in enumerate([140, 170, 220]):
        wav = 0.3 * np.sin(2 * np.pi * (f0 + 30 * np.sin(2 * np.pi * (2 + i) * t)) * t)
        paths.append(tmp_path / f"s{i}.wav")
        sf.write(paths[-1], (wav + 0.01 * rng.standard_normal(t.size)).astype(np.float32), 16000)
    files = [str(p) for p in paths]
    client = Client(server, verbose=False)
    probs, _, info, _ = client.predict(handle_file(files[0]), "", "emodb-compare",
                                       [handle_file(f) for f in files[1:]], api_name="/predict")
    want = zoo.load("emodb-compare").adapt(files).predict(files[0])
    assert _confidences(probs) == pytest.approx(want["probs"], abs=1e-5)
    assert "Adapted to the speaker of this clip and 2 more" in info
    probs, _, info, _ = client.predict(handle_file(files[0]), "", "emodb-compare", [], api_name="/predict")
    plain = zoo.load("emodb-compare").predict(files[0])
    assert _confidences(probs) == pytest.approx(plain["probs"], abs=1e-5)
    assert plain["probs"] != pytest.approx(want["probs"], abs=1e-3)  # adaptation changed something
    assert "attach other clips of the same voice" in info
    # a model without per-speaker statistics ignores them and says so
    _, _, info, _ = client.predict(handle_file(files[0]), "", "audio-cnn-synth",
                                   [handle_file(files[1])], api_name="/predict")
    assert "not used" in info


def test_page_refuses_a_text_model_without_text(server, tmp_path):
    from gradio_client import Client

    client = Client(server, verbose=False)
    with pytest.raises(Exception, match="transcript"):
        client.predict(None, "", "text-bert-synth", [], api_name="/predict")


def test_page_draws_a_dimensional_model_on_the_arousal_valence_plane(server, tmp_path):
    from gradio_client import Client, handle_file

    t = np.arange(int(2.0 * 16000)) / 16000
    path = tmp_path / "speech.wav"
    sf.write(path, (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000)
    client = Client(server, verbose=False)
    _probs, label, info, plane = client.predict(handle_file(str(path)), "", "audio-cnn-dims-synth", [],
                                                api_name="/predict")
    want = zoo.load("audio-cnn-dims-synth").predict(str(path))
    assert label == ", ".join(f"{d} {v:.2f}" for d, v in want["dims"].items())
    assert plane and "predicts arousal, valence" in info


def test_page_refuses_an_upload_too_long_or_not_audio(server, tmp_path):
    from gradio_client import Client, handle_file

    sf.write(tmp_path / "long.wav", np.zeros(130 * 8000, np.float32), 8000, subtype="PCM_16")  # 130 s > 120 s
    (tmp_path / "fake.wav").write_text("not audio\n" * 100)
    client = Client(server, verbose=False)
    with pytest.raises(Exception, match="accepts up to 120 s"):
        client.predict(handle_file(str(tmp_path / "long.wav")), "", "audio-cnn-synth", [], api_name="/predict")
    with pytest.raises(Exception, match="not a readable audio file"):
        client.predict(handle_file(str(tmp_path / "fake.wav")), "", "audio-cnn-synth", [], api_name="/predict")


def test_upload_limits_and_the_default_host(tmp_path, monkeypatch):
    from zoo.errors import ZooUserError
    from zoo.inference import commands, demo

    sf.write(tmp_path / "a.wav", np.zeros(3 * 16000, np.float32), 16000, subtype="PCM_16")
    demo.check_upload(str(tmp_path / "a.wav"))
    with pytest.raises(ZooUserError, match="is 3 s long; this page accepts up to 2 s"):
        demo.check_upload(str(tmp_path / "a.wav"), max_seconds=2)
    with pytest.raises(ZooUserError, match="this page accepts up to 0.01 MB"):
        demo.check_upload(str(tmp_path / "a.wav"), max_mb=0.01)
    launched = {}

    class App:
        def launch(self, **kw):
            launched.update(kw)

    monkeypatch.setattr(demo, "build_demo", lambda *a, **kw: launched.update(kw) or App())
    commands.main_demo(["--model", "audio-cnn-synth"])
    assert launched["server_name"] == "127.0.0.1" and launched["share"] is False  # this machine only
    assert launched["max_file_size"] == "20mb" and launched["max_seconds"] == 120.0
