"""course_lib.video: generated clip, MP4/GIF round trips, bad files, flicker and its reduction."""

from __future__ import annotations

import subprocess
import warnings

import imageio_ffmpeg
import numpy as np
import pytest

from course_lib.style import OnnxBackend, generated_style
from course_lib.video import (Clip, TruncatedVideoWarning, VideoError, flicker, make_clip, read_video, side_by_side,
                              smooth_frames, stylize_clip, write_gif, write_mp4)


@pytest.fixture(scope="module")
def clip() -> Clip:
    return make_clip(n_frames=10, width=96, height=64, fps=8)


def test_generated_clip_moves_and_is_deterministic(clip):
    assert clip.frames.shape == (10, 64, 96, 3) and clip.fps == 8 and clip.size == (96, 64)
    assert clip.frames.dtype == np.float32 and 0 <= clip.frames.min() and clip.frames.max() <= 1
    np.testing.assert_array_equal(clip.frames, make_clip(n_frames=10, width=96, height=64, fps=8).frames)
    assert flicker(clip.frames) > 0.01, "the camera should move"
    with pytest.raises(ValueError, match="at least"):
        make_clip(n_frames=0)


def test_mp4_round_trip_keeps_frames_size_and_fps(clip, tmp_path):
    path = write_mp4(clip.frames, tmp_path / "out" / "clip.mp4", clip.fps)
    back = read_video(path)
    assert len(back) == len(clip) and back.size == clip.size and back.fps == pytest.approx(clip.fps)
    assert np.abs(back.frames - clip.frames).mean() < 0.03  # lossy, but the same pictures
    assert not list(path.parent.glob("*.part"))
    first = read_video(path, max_frames=3, max_side=48)
    assert first.frames.shape == (3, 32, 48, 3)


def test_odd_sizes_are_cropped_to_even_for_h264(tmp_path):
    frames = np.random.default_rng(0).random((3, 33, 47, 3)).astype(np.float32)
    back = read_video(write_mp4(frames, tmp_path / "odd.mp4", 5))
    assert back.size == (46, 32) and len(back) == 3


def test_gif_round_trip(clip, tmp_path):
    back = read_video(write_gif(clip.frames, tmp_path / "clip.gif", clip.fps))
    assert len(back) == len(clip) and back.size == clip.size
    assert back.fps == pytest.approx(clip.fps, rel=0.1)  # GIF stores delays in 1/100 s


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(VideoError, match=r"\(T, H, W, 3\)"):
        write_mp4(np.zeros((0, 32, 32, 3)), tmp_path / "empty.mp4", 10)
    with pytest.raises(VideoError, match=r"\(T, H, W, 3\)"):
        write_gif(np.zeros((2, 32, 32)), tmp_path / "gray.gif", 10)
    assert list(tmp_path.iterdir()) == []


def test_bad_video_files(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all")
    with pytest.raises(VideoError, match="not a video file"):
        read_video(text)
    with pytest.raises(VideoError, match="not found"):
        read_video(tmp_path / "missing.mp4")
    audio = tmp_path / "sound.mp4"  # a valid MP4 with an audio track and zero video frames
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    "anullsrc=r=8000:cl=mono", "-t", "0.3", str(audio)], check=True)
    with pytest.raises(VideoError, match="no video frames"):
        read_video(audio)


def test_truncated_video_warns_with_frames_announced_and_read(tmp_path):
    full = write_mp4(make_clip(n_frames=24, width=64, height=48, fps=12).frames, tmp_path / "full.mp4", 12)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncatedVideoWarning)  # a complete file, or a cap, says nothing
        assert len(read_video(full)) == 24 and len(read_video(full, max_frames=5)) == 5
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])  # the header survives, half the frames do not
    with pytest.warns(TruncatedVideoWarning, match=r"'cut.mp4': read only (\d+) of the 24 frames its header "
                                                   r"announces \(2.00 s at 12 fps\); the file looks truncated"):
        clip = read_video(cut)
    assert 0 < len(clip) < 20
    with pytest.warns(TruncatedVideoWarning, match=rf"read only {len(clip)} of the 20 frames asked for"):
        read_video(cut, max_frames=20)


def test_flicker_measure_and_smoothing():
    still = np.full((5, 8, 8, 3), 0.3, np.float32)
    assert flicker(still) == 0.0 and flicker(still[:1]) == 0.0
    blink = np.stack([np.zeros((8, 8, 3)), np.ones((8, 8, 3))] * 3).astype(np.float32)
    assert flicker(blink) == pytest.approx(1.0)
    smoothed = smooth_frames(blink, 0.5)
    assert flicker(smoothed) < 0.6 and smoothed.shape == blink.shape
    np.testing.assert_array_equal(smooth_frames(blink, 0.0), blink)
    np.testing.assert_allclose(smoothed[1], 0.5)  # y1 = 0.5 * 0 + 0.5 * 1
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        smooth_frames(blink, 1.0)


def test_stylized_clip_keeps_frames_and_smoothing_cuts_flicker(clip):
    backend = OnnxBackend()
    plain = stylize_clip(clip, backend, generated_style("mosaic"), progress=False)
    smooth = stylize_clip(clip, backend, generated_style("mosaic"), smooth=0.6, progress=False)
    assert plain.frames.shape == clip.frames.shape and plain.fps == clip.fps
    assert np.abs(plain.frames - clip.frames).mean() > 0.02
    assert flicker(smooth.frames) < flicker(plain.frames)
    pair = side_by_side(clip.frames[0], plain.frames[0])
    assert pair.shape == (64, 96 * 2 + 4, 3)


@pytest.mark.parametrize("fps", [30.0, 24.0, 12.0, 7.0])
def test_gif_plays_at_its_frame_rate_although_delays_are_whole_centiseconds(tmp_path, fps):
    from PIL import Image

    frames = np.random.default_rng(0).integers(0, 255, (30, 16, 16, 3), dtype=np.uint8)
    path = write_gif(frames, tmp_path / "clip.gif", fps)
    with Image.open(path) as im:
        delays = []
        for i in range(im.n_frames):
            im.seek(i)
            delays.append(im.info["duration"])
    assert len(delays) == 30
    assert abs(sum(delays) - 30 * 1000 / fps) <= 10  # 30 fps at one 30 ms delay each would be 100 ms short
