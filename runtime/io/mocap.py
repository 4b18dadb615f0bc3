"""Motion-capture outputs of ``pose3d-rt run``: OpenSim TRC and BVH files per track, and a tidy CSV.

Under ``--output-root`` (named like the JSON, ``results_<input name>``):

- ``--save-trc``: ``results_<name>_track<ID>.trc``, one per track: the 17 H36M joints as markers (names of
  :data:`~pose3d_rt.keypoint_sets.H36M17`), millimetres, OpenSim axes (X forward, Y up, Z right: the JSON's
  X right, Y forward, Z up rotated, not mirrored). One row per video frame from the track's first to its last
  lifted frame; ``Frame#`` is the video frame number (1-based), ``Time`` the frame's timestamp (seconds, from the
  video); a frame where the track is missing has ``NaN`` marker fields (OpenSim's missing markers).
  ``DataRate``/``CameraRate``/``OrigDataRate`` are the video's frame rate.
- ``--save-bvh``: ``results_<name>_track<ID>.bvh``, one per track (:mod:`pose3d_rt.io.bvh`: Y up, centimetres),
  the same frame span at the video's frame rate; a frame where the track is missing holds the previous pose.
- ``--save-csv``: ``results_<name>.csv``, one row per frame, track and H36M-17 joint: ``frame, time, track_id,
  joint, x2d, y2d, score2d, x3d, y3d, z3d`` (2D in pixels and scores converted to the H36M joints as the lifter
  sees them, 3D in metres in the JSON's axes; empty 3D for a person not lifted).

Memory stays bounded in the video's length: the CSV is a stream (valid after every frame, like the predictions
JSON: renamed into place when opened, flushed after every frame); the TRC and BVH rows are spilled to raw files
beside the outputs and written at the end (also after an interruption), chunk by chunk, each file atomically;
the BVH's median bone lengths take one more pass over a track's rows.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from ..errors import InputError
from ..keypoint_sets import H36M17, convert_keypoint_definition
from ..results import FrameResult
from . import bvh
from .atomic import atomic_path, replace_file, temp_path

log = logging.getLogger(__name__)

MARKERS: Tuple[str, ...] = tuple(H36M17.keypoint_names)
TO_OPENSIM = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]) * 1000.0  # JSON metres -> OpenSim mm
CSV_COLUMNS = ("frame", "time", "track_id", "joint", "x2d", "y2d", "score2d", "x3d", "y3d", "z3d")
_CSV_2D = "%.3f,%.3f,%.4f,,,\n"  # x2d, y2d, score2d; no 3D
_CSV_3D = "%.3f,%.3f,%.4f,%.6f,%.6f,%.6f\n"
CHUNK = 1024  # frames per step when writing the TRC and BVH files
DEFAULT_RATE = 30.0  # the rate written for a source without one (a single image)


def mocap_paths(root: Path, name: str, track_id: int) -> Dict[str, Path]:
    """The TRC and BVH files of one track."""
    stem = f"results_{name}_track{int(track_id)}"
    return {"trc": root / f"{stem}.trc", "bvh": root / f"{stem}.bvh"}


class TidyCsv:
    """``--save-csv``: the tidy CSV as a stream, valid after every frame."""

    def __init__(self, path: Path, keypoint_dataset: str = "coco") -> None:
        self.path = path
        self.dataset = keypoint_dataset
        self._tmp = temp_path(path)
        self._fh = open(self._tmp, "w", encoding="utf-8", newline="")
        self._fh.write(",".join(CSV_COLUMNS) + "\n")
        self._fh.flush()
        replace_file(self._tmp, path)
        self.rows = 0

    def add(self, res: FrameResult) -> None:
        n = len(res)
        if n == 0:
            return
        k2 = np.concatenate([res.keypoints_2d, res.scores_2d[..., None]], -1).astype(np.float64)
        try:
            h2 = convert_keypoint_definition(k2, self.dataset, "h36m")  # (n, 17, 3): x, y, score
        except InputError as exc:
            raise InputError(f"--save-csv: {exc}") from None
        k3 = res.columns(("keypoints_3d",))["keypoints_3d"].astype(np.float64)
        lifted = np.isfinite(k3).all(axis=(1, 2)).tolist()
        values = np.concatenate([h2, k3], -1).tolist()  # (n, 17, 6)
        time = "" if res.timestamp is None else f"{res.timestamp:.6f}"
        lines = []
        for tid, ok, person in zip(res.track_ids.tolist(), lifted, values):  # text: one line per joint
            head, fmt = f"{res.frame_index},{time},{tid},", _CSV_3D if ok else _CSV_2D
            lines += [f"{head}{name},{fmt % tuple(v[:6 if ok else 3])}" for name, v in zip(MARKERS, person)]
        self._fh.write("".join(lines))
        self._fh.flush()
        self.rows += n * 17

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()


class _Spill:
    """Raw files beside the outputs: every frame's (index, time), and every lifted tracked person's (frame index,
    track id, 3D joints)."""

    FILES = {"frame_index": np.int64, "frame_time": np.float64, "row_frame": np.int64, "row_track": np.int64,
             "row_joints": np.float32}

    def __init__(self, folder: Path) -> None:
        self.dir = folder
        self.dir.mkdir(parents=True, exist_ok=True)
        self.frames = self.rows = 0
        self.files = {k: open(self.dir / f"{k}.bin", "wb") for k in self.FILES}

    def add(self, res: FrameResult, fps: float) -> None:
        t = res.timestamp if res.timestamp is not None else res.frame_index / fps
        self.files["frame_index"].write(np.int64(res.frame_index).tobytes())
        self.files["frame_time"].write(np.float64(t).tobytes())
        self.frames += 1
        if res.keypoints_3d is None or len(res) == 0:
            return
        keep = (res.track_ids >= 0) & np.isfinite(res.keypoints_3d).all(axis=(1, 2))
        m = int(keep.sum())
        self.files["row_frame"].write(np.full(m, res.frame_index, np.int64).tobytes())
        self.files["row_track"].write(res.track_ids[keep].astype(np.int64).tobytes())
        self.files["row_joints"].write(np.ascontiguousarray(res.keypoints_3d[keep], np.float32).tobytes())
        self.rows += m

    def arrays(self) -> Dict[str, np.ndarray]:
        """The spilled columns, memory-mapped (closes the files)."""
        out = {}
        for key, dtype in self.FILES.items():
            self.files[key].close()
            n = self.frames if key.startswith("frame_") else self.rows
            shape = (n, 17, 3) if key == "row_joints" else (n,)
            out[key] = np.memmap(self.dir / f"{key}.bin", dtype, "r", shape=shape) if n else np.zeros(shape, dtype)
        return out

    def remove(self) -> None:
        for fh in self.files.values():
            fh.close()
        for f in self.dir.glob("*.bin"):
            f.unlink()
        self.dir.rmdir()


class _Track:
    """One track's rows in the spill: its lifted frames and the span of video frames from the first to the last."""

    def __init__(self, track_id: int, rows: np.ndarray, cols: Dict[str, np.ndarray]) -> None:
        self.id = track_id
        self.rows = rows  # ascending: frame order
        self.cols = cols
        self.row_frames = np.asarray(cols["row_frame"][rows])
        frames = cols["frame_index"]
        self.span = (int(np.searchsorted(frames, self.row_frames[0])),
                     int(np.searchsorted(frames, self.row_frames[-1])) + 1)  # positions in the frame table

    @property
    def num_frames(self) -> int:
        return self.span[1] - self.span[0]

    def chunks(self) -> Iterator[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(frame indices, times, joints in metres with NaN where the track is missing), CHUNK frames at a time."""
        frames, times = self.cols["frame_index"], self.cols["frame_time"]
        for a in range(self.span[0], self.span[1], CHUNK):
            b = min(a + CHUNK, self.span[1])
            idx = np.asarray(frames[a:b])
            joints = np.full((b - a, 17, 3), np.nan)
            lo, hi = np.searchsorted(self.row_frames, [idx[0], idx[-1] + 1])
            pos = np.searchsorted(idx, self.row_frames[lo:hi])
            joints[pos] = self.cols["row_joints"][self.rows[lo:hi]]
            yield idx, np.asarray(times[a:b]), joints


def write_trc(path: Path, track: _Track, rate: float) -> None:
    """One track's TRC file, atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        n = track.num_frames
        first = int(track.row_frames[0]) + 1
        fh.write(f"PathFileType\t4\t(X/Y/Z)\t{path.name}\n")
        fh.write("DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\t"
                 "OrigNumFrames\n")
        fh.write(f"{rate:g}\t{rate:g}\t{n}\t{len(MARKERS)}\tmm\t{rate:g}\t{first}\t{n}\n")
        fh.write("Frame#\tTime\t" + "\t\t\t".join(MARKERS) + "\t\t\n")
        fh.write("\t\t" + "\t".join(f"{a}{i + 1}" for i in range(len(MARKERS)) for a in "XYZ") + "\n\n")
        for idx, times, joints in track.chunks():
            mm = (joints @ TO_OPENSIM.T).reshape(len(idx), -1)
            values = np.where(np.isfinite(mm), np.char.mod("%.6f", mm), "NaN")
            head = np.char.add(np.char.add((idx + 1).astype(str), "\t"), np.char.mod("%.6f", times))
            rows = np.concatenate([head[:, None], values], axis=1)
            fh.write("".join("\t".join(row) + "\n" for row in rows.tolist()))  # one line per frame


def write_bvh(path: Path, track: _Track, rate: float) -> None:
    """One track's BVH file, atomically: bone lengths = the track's medians (a first pass over its rows), then the
    rotations chunk by chunk, missing frames holding the previous pose."""
    lengths = np.median(np.concatenate([bvh.bone_lengths(bvh.to_bvh_axes(j[np.isfinite(j).all(axis=(1, 2))]))
                                        for _, _, j in track.chunks()]), axis=0)
    joints_def = bvh.hierarchy(lengths)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        bvh.write_header(fh, joints_def, track.num_frames, 1.0 / rate)
        last: Optional[np.ndarray] = None
        for _, _, joints in track.chunks():
            ok = np.isfinite(joints).all(axis=(1, 2))
            if last is not None:
                joints, ok = np.concatenate([last[None], joints]), np.concatenate([[True], ok])
            hold = np.maximum.accumulate(np.where(ok, np.arange(len(ok)), 0))
            joints = joints[hold][0 if last is None else 1:]
            last = joints[-1]
            np.savetxt(fh, bvh.motion_rows(bvh.to_bvh_axes(joints), joints_def), fmt="%.6f", delimiter=" ")


class MocapWriter:
    """The ``--save-trc`` / ``--save-bvh`` / ``--save-csv`` outputs of one run (see the module doc).

    :meth:`add` every result in frame order; :meth:`close` writes the TRC and BVH files (also after an
    interruption) and returns every file written."""

    def __init__(self, root: Path, name: str, *, trc: bool = False, bvh: bool = False, csv: bool = False,
                 fps: float = 0.0, keypoint_dataset: str = "coco") -> None:
        self.root, self.name = root, name
        self.trc, self.bvh = trc, bvh
        self.rate = fps if fps and fps > 0 else DEFAULT_RATE
        self.written: List[Path] = []
        self.csv = TidyCsv(root / f"results_{name}.csv", keypoint_dataset) if csv else None
        self.spill = _Spill(root / f".results_{name}.mocap.parts") if (trc or bvh) else None

    def add(self, res: FrameResult) -> None:
        if self.csv is not None:
            self.csv.add(res)
        if self.spill is not None:
            self.spill.add(res, self.rate)

    def close(self) -> List[Path]:
        if self.csv is not None and not self.csv._fh.closed:
            self.csv.close()
            self.written.append(self.csv.path)
        if self.spill is not None:
            spill, self.spill = self.spill, None
            try:
                self._write_tracks(spill.arrays())
            finally:
                spill.remove()
        return self.written

    def _write_tracks(self, cols: Dict[str, np.ndarray]) -> None:
        tracks = np.asarray(cols["row_track"])
        order = np.argsort(tracks, kind="stable")
        ids, starts = np.unique(tracks[order], return_index=True)
        for tid, a, b in zip(ids.tolist(), starts, list(starts[1:]) + [len(order)]):
            track = _Track(tid, order[a:b], cols)
            paths = mocap_paths(self.root, self.name, tid)
            if self.trc:
                write_trc(paths["trc"], track, self.rate)
                self.written.append(paths["trc"])
            if self.bvh:
                write_bvh(paths["bvh"], track, self.rate)
                self.written.append(paths["bvh"])
        log.info("wrote %d motion-capture files for %d tracks", len(self.written), len(ids))
        del cols


__all__ = ["MocapWriter", "TidyCsv", "write_trc", "write_bvh", "mocap_paths", "MARKERS", "TO_OPENSIM",
           "CSV_COLUMNS"]
