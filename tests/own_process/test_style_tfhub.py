"""TensorFlow Hub backend of course_lib.style: the tests that load TensorFlow into the test process.

They run in a pytest process of their own (``make test`` starts it after the main run): with
TensorFlow loaded, later imports of torchvision in the same process can crash it, which took a whole
test worker down when these tests shared one with the others.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from course_lib.data.download import DownloadError
from course_lib.style import (BuiltinStyle, OnnxBackend, TFHubBackend, generated_style, import_tensorflow_hub,
                              load_backend)

ROOT = Path(__file__).resolve().parents[2]


def _content(h: int = 48, w: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x / w, y / h, 0.5 + 0 * x], axis=2).astype(np.float32)


@pytest.fixture(scope="module")
def onnx() -> OnnxBackend:
    return OnnxBackend()


def _run(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COURSE_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=600, env=env, cwd=ROOT)


TORCH_SIDE = "import torchvision, diffusers, torchmetrics"


@pytest.fixture(scope="module")
def tiny_hub_model(tmp_path_factory) -> Path:
    """A SavedModel with the Magenta signature (content, style) -> [image]: half content, half the style's mean colour."""
    pytest.importorskip("tensorflow", reason="TensorFlow is not installed (the lean set): make install TF=1")
    import_tensorflow_hub()  # the guarded import: TensorFlow must not come before triton unguarded
    import tensorflow as tf

    class Tiny(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mix = tf.Variable(0.5)

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32),
                                      tf.TensorSpec([None, None, None, 3], tf.float32)])
        def __call__(self, content, style):
            mean = tf.reduce_mean(style, axis=[1, 2], keepdims=True)
            return [(1 - self.mix) * content + self.mix * mean]

    path = tmp_path_factory.mktemp("hub") / "tiny_stylizer"
    tf.saved_model.save(Tiny(), str(path))
    return path


def test_builtin_styles_only_on_onnx(onnx, tiny_hub_model):
    out = onnx.stylize(_content(), BuiltinStyle(7), strength=0.5, size=64)[0]
    assert out.shape == (48, 64, 3)
    with pytest.raises(ValueError, match="built-in"):
        TFHubBackend(str(tiny_hub_model)).stylize(_content(), BuiltinStyle(7))
    with pytest.raises(ValueError, match="0 to 25"):
        BuiltinStyle(26)


def test_tfhub_backend_through_hub_load(tiny_hub_model, cache):
    backend = TFHubBackend(str(tiny_hub_model))
    assert os.environ["TFHUB_CACHE_DIR"] == str(cache / "tfhub")
    content = _content()
    style = np.zeros((300, 200, 3), np.float32) + np.array([0.9, 0.1, 0.3], np.float32)
    out = backend.stylize(content, style, size=64)[0]
    np.testing.assert_allclose(out, 0.5 * content + 0.5 * style[0, 0], atol=2e-3)
    half = backend.stylize(content, style, strength=0.5, size=64)[0]  # the output blend
    np.testing.assert_allclose(half, 0.5 * out + 0.5 * content, atol=2e-3)


@pytest.mark.parametrize("name", ["onnx", "tfhub"])
def test_same_interface_for_frames(name, onnx, tiny_hub_model):
    backend = onnx if name == "onnx" else TFHubBackend(str(tiny_hub_model))
    frames = np.stack([_content(), _content()[::-1].copy()])
    outs = backend.stylize(frames, generated_style("stripes"), strength=1.0, size=32)
    assert len(outs) == 2 and all(o.shape == (24, 32, 3) for o in outs)
    assert np.abs(outs[0] - outs[1]).mean() > 0.01
    run = backend.stylizer(generated_style("stripes"), 1.0, 32)
    np.testing.assert_allclose(run(frames[0]), outs[0], atol=1e-5)


def test_load_backend_uses_a_local_saved_model(tiny_hub_model, capsys):
    backend = load_backend("auto", handle=str(tiny_hub_model))
    assert backend.name == "tfhub" and "tfhub:" in capsys.readouterr().out


def test_broken_model_folder_falls_back(tmp_path, capsys):
    broken = tmp_path / "not_a_model"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"garbage")
    assert load_backend("tfhub", handle=str(broken)).name == "onnx"
    assert "could not load" in capsys.readouterr().out


@pytest.mark.parametrize("order", ["tfhub backend first", "torch side first"])
def test_no_crash_whatever_the_import_order(order, tiny_hub_model):
    load = textwrap.dedent(f"""
        import numpy as np
        from course_lib.style import TFHubBackend
        out = TFHubBackend({str(tiny_hub_model)!r}).stylize(np.full((40, 40, 3), 0.5, np.float32),
                                                            np.zeros((64, 64, 3), np.float32), size=40)[0]
        assert abs(float(out.mean()) - 0.25) < 1e-3
    """)
    code = (load + TORCH_SIDE) if order.startswith("tfhub") else (TORCH_SIDE + "\n" + load)
    result = _run(code + "\nprint('survived')\n")
    assert result.returncode == 0 and "survived" in result.stdout, result.stderr[-2000:]


def test_prefetch_helpers_raise_download_errors_offline(cache, tiny_hub_model):
    from course_lib.style import fetch_hub_model, fetch_scream
    with pytest.raises(DownloadError, match="COURSE_OFFLINE"):
        fetch_scream()
    with pytest.raises(DownloadError, match="COURSE_OFFLINE"):
        fetch_hub_model()
    assert fetch_hub_model(str(tiny_hub_model)) == cache / "tfhub"
