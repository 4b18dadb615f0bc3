"""Synthetic engines for benchmarking (``--synthetic``, the memory benchmark) and testing the pipeline without
real networks.

They implement :class:`~pose3d_rt.engines.base.Engine` with the signatures of the real models (mmdeploy-style
detector ``dets``/``labels``, RTMPose ``simcc_x``/``simcc_y``, TCN ``keypoints`` -> ``keypoints_3d``) and
produce deterministic outputs from a script, so that pipeline behaviour (tracking, lifting delay, memory) can be
checked against closed-form expectations at thousands of frames per second.
"""
from __future__ import annotations

from typing import Callable, Dict, Mapping, Optional, Sequence, Union

import numpy as np
from pose3d_rt.engines.base import Engine, TensorSpec

# A neutral standing pose in a 192x256 crop (COCO-17 order), used by the synthetic pose engine.
TEMPLATE_CROP_XY = np.array(
    [[96, 40], [102, 34], [90, 34], [110, 38], [82, 38], [120, 70], [72, 70], [128, 110], [64, 110],
     [132, 145], [60, 145], [112, 150], [80, 150], [114, 195], [78, 195], [116, 235], [76, 235]],
    np.float32,
)


# A standing person facing the camera: H36M-17 in the display frame (metres, X right, Y forward, Z up; lowest joint
# at z = 0; facing the camera, the person's left side is at X < 0) and COCO-17 pixel offsets around the person's
# centre (left joints at +x). Used by the visualization tests and benchmark.
STANDING_H36M_3D = np.array([
    [0.0, 0.0, 0.95], [0.13, 0.0, 0.95], [0.13, 0.02, 0.5], [0.13, 0.05, 0.0],
    [-0.13, 0.0, 0.95], [-0.13, 0.02, 0.5], [-0.13, 0.05, 0.0],
    [0.0, 0.0, 1.2], [0.0, 0.0, 1.45], [0.0, 0.0, 1.55], [0.0, 0.0, 1.7],
    [-0.18, 0.0, 1.45], [-0.2, 0.0, 1.18], [-0.2, 0.05, 0.92],
    [0.18, 0.0, 1.45], [0.2, 0.0, 1.18], [0.2, 0.05, 0.92],
], np.float32)
STANDING_COCO_OFFSETS = np.array([
    [0, -80], [6, -86], [-6, -86], [14, -82], [-14, -82], [30, -50], [-30, -50], [36, -10], [-36, -10],
    [38, 25], [-38, 25], [18, 30], [-18, 30], [20, 90], [-20, 90], [20, 150], [-20, 150],
], np.float32)


class ScriptedDetector(Engine):
    """A detector engine whose n-th call returns ``script(n)``: an (k, 5) array [x1, y1, x2, y2, score] in
    *network-input* pixels (mmdeploy ``dets`` convention). Input (N, 3, S, S)."""

    def __init__(self, script: Callable[[int], np.ndarray], input_size: int = 320, path: str = "<scripted-det>"):
        super().__init__(
            path=path,
            inputs=(TensorSpec("input", (None, 3, input_size, input_size), np.dtype(np.float32)),),
            outputs=(TensorSpec("dets", (None, None, 5), np.dtype(np.float32)),
                     TensorSpec("labels", (None, None), np.dtype(np.int64))),
            metadata={"family": "rtmdet", "input_size": f"{input_size},{input_size}", "output_format": "dets_labels"},
        )
        self.script = script
        self.calls = 0

    def run(self, inputs: Union[np.ndarray, Mapping[str, np.ndarray]]) -> Dict[str, np.ndarray]:
        x = inputs if isinstance(inputs, np.ndarray) else inputs["input"]
        outs = []
        for _ in range(x.shape[0]):
            outs.append(np.asarray(self.script(self.calls), np.float32).reshape(-1, 5))
            self.calls += 1
        k = max(1, max(o.shape[0] for o in outs))
        dets = np.zeros((len(outs), k, 5), np.float32)
        labels = np.full((len(outs), k), -1, np.int64)
        for i, o in enumerate(outs):
            dets[i, : o.shape[0]] = o
            labels[i, : o.shape[0]] = 0
        return {"dets": dets, "labels": labels}


class TemplatePose(Engine):
    """An RTMPose-like engine: every crop gets the same SimCC peaks (``TEMPLATE_CROP_XY``) with logit ``peak``,
    so the decoded keypoints are the template mapped back through each crop's affine transform."""

    def __init__(self, input_hw=(256, 192), split_ratio: float = 2.0, peak: float = 0.9, path: str = "<template-pose>"):
        h, w = input_hw
        self.wx, self.wy = int(w * split_ratio), int(h * split_ratio)
        super().__init__(
            path=path,
            inputs=(TensorSpec("input", (None, 3, h, w), np.dtype(np.float32)),),
            outputs=(TensorSpec("simcc_x", (None, 17, self.wx), np.dtype(np.float32)),
                     TensorSpec("simcc_y", (None, 17, self.wy), np.dtype(np.float32))),
            metadata={"family": "rtmpose", "input_size": f"{h},{w}", "simcc_split_ratio": str(split_ratio),
                      "dataset": "coco"},
        )
        sx = np.full((17, self.wx), -1.0, np.float32)
        sy = np.full((17, self.wy), -1.0, np.float32)
        bx = np.round(TEMPLATE_CROP_XY[:, 0] * split_ratio).astype(int)
        by = np.round(TEMPLATE_CROP_XY[:, 1] * split_ratio).astype(int)
        sx[np.arange(17), bx] = peak
        sy[np.arange(17), by] = peak
        self._sx, self._sy = sx, sy

    def run(self, inputs: Union[np.ndarray, Mapping[str, np.ndarray]]) -> Dict[str, np.ndarray]:
        x = inputs if isinstance(inputs, np.ndarray) else inputs["input"]
        n = x.shape[0]
        return {"simcc_x": np.broadcast_to(self._sx, (n,) + self._sx.shape).copy(),
                "simcc_y": np.broadcast_to(self._sy, (n,) + self._sy.shape).copy()}


class LinearLifter(Engine):
    """A TCN-shaped engine (N, T, 17, 2) -> (N, 1, 17, 3): a fixed linear function of the window, so that
    windowing/delay behaviour can be checked in closed form. ``weights`` (T,) mixes the frames."""

    def __init__(self, receptive_field: int = 27, weights: Optional[Sequence[float]] = None,
                 causal: bool = False, path: str = "<linear-lifter>"):
        t = int(receptive_field)
        super().__init__(
            path=path,
            inputs=(TensorSpec("keypoints", (None, t, 17, 2), np.dtype(np.float32)),),
            outputs=(TensorSpec("keypoints_3d", (None, 1, 17, 3), np.dtype(np.float32)),),
            metadata={"family": "tcn", "receptive_field": str(t), "causal": str(causal).lower(), "form": "strided",
                      "input_joint_order": "h36m", "dataset": "h36m"},
        )
        w = np.linspace(1.0, 2.0, t) if weights is None else np.asarray(weights, np.float64)
        self.weights = (w / w.sum()).astype(np.float32)

    def run(self, inputs: Union[np.ndarray, Mapping[str, np.ndarray]]) -> Dict[str, np.ndarray]:
        x = inputs if isinstance(inputs, np.ndarray) else inputs["keypoints"]
        mixed = np.einsum("t,ntkc->nkc", self.weights, x.astype(np.float32))
        z = (mixed[..., :1] * 0.5 + 1.0)
        return {"keypoints_3d": np.concatenate([mixed, z], -1)[:, None].astype(np.float32)}


def walking_boxes(num_persons: int = 3, input_size: int = 320, period: int = 200, gap_every: int = 0,
                  gap_len: int = 0) -> Callable[[int], np.ndarray]:
    """A script for :class:`ScriptedDetector`: ``num_persons`` boxes walking left-right (input pixels); with
    ``gap_every`` > 0, person 0 is missed for ``gap_len`` frames every ``gap_every`` frames."""

    def script(n: int) -> np.ndarray:
        rows = []
        for p in range(num_persons):
            if p == 0 and gap_every and (n % gap_every) < gap_len and n >= gap_every:
                continue
            phase = 2 * np.pi * ((n + 37 * p) % period) / period
            cx = input_size * (0.2 + 0.6 * (p + 0.5) / num_persons) + 0.08 * input_size * np.sin(phase)
            cy = input_size * 0.45
            w, h = 0.12 * input_size, 0.5 * input_size
            rows.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, 0.9 - 0.01 * p])
        return np.array(rows, np.float32).reshape(-1, 5)

    return script
