"""Benchmark: the onnx style backend's frames per second at 256 px vs. the raw onnxruntime call.

Both run in this process on the same frames of the generated clip (256 x 144 px), the same style
bottleneck and the same onnxruntime session. The toolkit path is ``OnnxBackend.stylizer(...)`` applied
to each frame (input checks, resize, mirror-padding to the network's 384 x 384, crop, clip); the raw
path is only ``session.run`` on frames padded in advance. Runs alternate (raw, toolkit, raw, ...) and
the median of each is compared. Targets: toolkit >= 8 fps, toolkit fps / raw fps >= 0.8.

    python benchmarks/bench_style.py [--frames 24] [--repeats 5] [--size 256]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from course_lib.style import OnnxBackend, generated_style
from course_lib.video import make_clip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()

    clip = make_clip(n_frames=args.frames, width=args.size, height=args.size * 9 // 16)
    backend = OnnxBackend()
    style = generated_style("mosaic")
    vector = backend.style_vector(style)
    run = backend.stylizer(style, strength=1.0, size=args.size)
    side = backend.net_side
    h, w = clip.frames.shape[1:3]
    padded = [np.pad(f, ((0, side - h), (0, side - w), (0, 0)), mode="symmetric")[None] for f in clip.frames]
    names = backend.transform_inputs

    def raw() -> float:
        start = time.perf_counter()
        for x in padded:
            backend.transform.run(None, {names[0]: x, names[1]: vector})
        return len(padded) / (time.perf_counter() - start)

    def toolkit() -> float:
        start = time.perf_counter()
        for frame in clip.frames:
            run(frame)
        return len(clip.frames) / (time.perf_counter() - start)

    raw(), toolkit()  # warm-up: first runs allocate onnxruntime's buffers
    raw_fps, kit_fps = [], []
    for _ in range(args.repeats):
        raw_fps.append(raw())
        kit_fps.append(toolkit())
    r, k = statistics.median(raw_fps), statistics.median(kit_fps)
    print(f"frames {w}x{h} px (network input {side}x{side}), {args.frames} frames x {args.repeats} runs")
    print(f"raw onnxruntime call: {r:6.1f} fps   (runs: {', '.join(f'{v:.1f}' for v in raw_fps)})")
    print(f"toolkit stylizer:     {k:6.1f} fps   (runs: {', '.join(f'{v:.1f}' for v in kit_fps)})")
    print(f"ratio toolkit / raw: {k / r:.2f}  (target >= 0.8)   toolkit fps target >= 8: "
          f"{'met' if k >= 8 else 'NOT met'}")


if __name__ == "__main__":
    main()
