"""BVH (Biovision hierarchy) of one track: a skeleton over the H36M-17 joints rooted at the pelvis, fixed bone lengths
and per-frame joint rotations solved from the 3D joints.

Axes and units: Y up, centimetres (BVH ``X = x``, ``Y = z``, ``Z = -y`` of the JSON's metres with X right, Y
forward, Z up: a rotation, no mirror). Blender's BVH importer reads this with its defaults (Y up); give it
Scale 0.01 for metres.

Hierarchy: ``root`` (the pelvis; 6 channels, translation = the pelvis position) -> hips and spine; ``thorax`` ->
neck and shoulders. A joint with several children (``root``, ``thorax``) reaches each child through a zero-offset
joint named ``<parent>_to_<child>`` (as the ``LHipJoint`` of the CMU BVH files), so that every bone's direction is
free. Rest pose: a T-pose (legs down, spine and head up, arms out sideways); each bone's length is the track's
median of that bone's 3D length. Leaf joints (feet, head, wrists) end in an ``End Site`` 10 cm along their bone.

Rotations (:func:`solve_rotations`, vectorized over frames, one step per joint of the tree from the pelvis down):
- ``root`` and ``thorax``: the rotation that best aligns their children's rest directions with the observed ones
  (Kabsch, per frame): the body's and the chest's orientation;
- every other joint: the smallest rotation taking its bone's rest direction to the observed direction seen in its
  parent's frame (swing only; the twist is the parent's).
Forward kinematics of the file gives back the *bone-length-normalised* joints: walking down the tree from the
pelvis, each joint at its parent plus the fixed bone length along the observed bone direction. Euler channels are
``Zrotation Xrotation Yrotation`` (R = Rz Rx Ry), degrees.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Dict, List, TextIO, Tuple

import numpy as np
from scipy.spatial.transform import Rotation

from ..keypoint_sets import H36M17

NAMES: Tuple[str, ...] = tuple(H36M17.keypoint_names)
PARENTS: Tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)  # H36M-17 tree from the pelvis
# Rest (T-pose) direction of the bone ending at each joint, in BVH axes (X = the person's right, Y up)
REST_DIRS = np.array([
    [0, 0, 0], [1, 0, 0], [0, -1, 0], [0, -1, 0], [-1, 0, 0], [0, -1, 0], [0, -1, 0],
    [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [-1, 0, 0], [-1, 0, 0], [-1, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0],
], np.float64)
# From the JSON's axes (X right, Y forward, Z up; metres) to BVH's (Y up; centimetres)
TO_BVH = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]) * 100.0
END_SITE_CM = 10.0
CHILDREN: Tuple[Tuple[int, ...], ...] = tuple(tuple(c for c, p in enumerate(PARENTS) if p == j) for j in range(17))
_EPS = 1e-9


def to_bvh_axes(joints_m: np.ndarray) -> np.ndarray:
    """(..., 3) JSON-axes metres -> BVH-axes centimetres."""
    return np.asarray(joints_m, np.float64) @ TO_BVH.T


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """(T, 17, 3) -> (T, 17) length of the bone ending at each joint (0 for the pelvis)."""
    parent = np.array([max(p, 0) for p in PARENTS])
    return np.linalg.norm(joints - joints[:, parent], axis=-1)


@dataclass(frozen=True)
class BvhJoint:
    """One joint of the file: its name, parent (index in the file's joint list, -1 for the root), H36M index (-1
    for a ``<parent>_to_<child>`` link) and rest offset from its parent (cm)."""

    name: str
    parent: int
    h36m: int
    offset: Tuple[float, float, float]


def hierarchy(lengths: np.ndarray) -> List[BvhJoint]:
    """The file's joints in file order (depth first), with their rest offsets from the bone ``lengths`` (17,)."""
    joints: List[BvhJoint] = []

    def add(j: int, parent: int, offset) -> None:
        me = len(joints)
        joints.append(BvhJoint(NAMES[j], parent, j, tuple(float(v) for v in offset)))
        kids = CHILDREN[j]
        for c in kids:
            off = REST_DIRS[c] * lengths[c]
            if len(kids) > 1:  # a zero-offset link, so that this child's direction is free
                link = len(joints)
                joints.append(BvhJoint(f"{NAMES[j]}_to_{NAMES[c]}", me, -1, (0.0, 0.0, 0.0)))
                add(c, link, off)
            else:
                add(c, me, off)

    add(0, -1, (0.0, 0.0, 0.0))
    return joints


def _unit(v: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, _EPS), n[..., 0] > _EPS


def minimal_rotation(a: np.ndarray, b: np.ndarray) -> Rotation:
    """Per row, the smallest rotation taking unit ``a`` (3,) to unit ``b`` (T, 3) (a zero ``b``: identity; opposite
    vectors: a half turn about an axis perpendicular to ``a``)."""
    b, ok = _unit(b)
    a = np.broadcast_to(a, b.shape)
    cross = np.cross(a, b)
    angle = np.arctan2(np.linalg.norm(cross, axis=-1), np.einsum("ij,ij->i", a, b))
    axis, has_axis = _unit(cross)
    perp = np.cross(a, np.where(np.abs(a[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]))
    axis = np.where(has_axis[:, None], axis, _unit(perp)[0])
    return Rotation.from_rotvec(axis * np.where(ok, angle, 0.0)[:, None])


def kabsch(rest: np.ndarray, observed: np.ndarray) -> Rotation:
    """Per frame, the rotation R minimising sum_k |R rest_k - observed_k|^2: ``rest`` (K, 3), ``observed``
    (T, K, 3) (batched Kabsch: SVD of the 3x3 covariances, reflections excluded)."""
    h = np.einsum("ki,tkj->tij", rest, observed)  # sum_k rest_k observed_k^T
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.einsum("tji,tkj->tik", vt, u)))  # det(V U^T)
    fix = np.ones((len(d), 3))
    fix[:, 2] = np.where(d == 0, 1.0, d)
    return Rotation.from_matrix(np.einsum("tji,tj,tkj->tik", vt, fix, u))  # V diag(1, 1, d) U^T


def solve_rotations(joints: np.ndarray) -> Dict[str, Rotation]:
    """Local rotation of every file joint (by name) for (T, 17, 3) BVH-axes joints (see the module doc)."""
    t = joints.shape[0]
    world: Dict[int, Rotation] = {}
    local: Dict[str, Rotation] = {}
    parent_world = Rotation.identity(t)

    def visit(j: int, parent_world: Rotation) -> None:
        kids = CHILDREN[j]
        if len(kids) > 1:
            obs = _unit(joints[:, kids] - joints[:, j:j + 1])[0]
            w = kabsch(REST_DIRS[list(kids)], obs)
        elif kids:
            w = parent_world * minimal_rotation(REST_DIRS[kids[0]], parent_world.inv().apply(
                joints[:, kids[0]] - joints[:, j]))
        else:
            w = parent_world
        local[NAMES[j]] = parent_world.inv() * w
        world[j] = w
        for c in kids:
            if len(kids) > 1:
                link = minimal_rotation(REST_DIRS[c], w.inv().apply(joints[:, c] - joints[:, j]))
                local[f"{NAMES[j]}_to_{NAMES[c]}"] = link
                visit(c, w * link)
            else:
                visit(c, w)

    visit(0, parent_world)
    return local


def write_header(fh: TextIO, joints: List[BvhJoint], frames: int, frame_time: float) -> None:
    """The HIERARCHY section and the MOTION header of the file."""
    fh.write("HIERARCHY\n")
    depth_of: List[int] = []
    for i, jt in enumerate(joints):
        depth = 0 if jt.parent < 0 else depth_of[jt.parent] + 1
        depth_of.append(depth)
        _close_to(fh, depth_of, i)
        pad = "\t" * depth
        fh.write(f"{pad}{'ROOT' if jt.parent < 0 else 'JOINT'} {jt.name}\n{pad}{{\n")
        fh.write(f"{pad}\tOFFSET {jt.offset[0]:.6f} {jt.offset[1]:.6f} {jt.offset[2]:.6f}\n")
        chans = "6 Xposition Yposition Zposition" if jt.parent < 0 else "3"
        fh.write(f"{pad}\tCHANNELS {chans} Zrotation Xrotation Yrotation\n")
        if jt.h36m >= 0 and not CHILDREN[jt.h36m]:
            end = REST_DIRS[jt.h36m] * END_SITE_CM
            fh.write(f"{pad}\tEnd Site\n{pad}\t{{\n{pad}\t\tOFFSET {end[0]:.6f} {end[1]:.6f} {end[2]:.6f}\n"
                     f"{pad}\t}}\n")
    _close_to(fh, depth_of, len(joints))
    fh.write(f"MOTION\nFrames: {frames}\nFrame Time: {frame_time:.8f}\n")


def _close_to(fh: TextIO, depth_of: List[int], i: int) -> None:
    """Close the braces of the joints before joint ``i`` that are not its ancestors."""
    if i == 0:
        return
    target = depth_of[i] if i < len(depth_of) else 0
    for d in range(depth_of[i - 1], target - 1, -1):
        fh.write("\t" * d + "}\n")


def motion_rows(joints: np.ndarray, file_joints: List[BvhJoint]) -> np.ndarray:
    """(T, 6 + 3 * (len(file_joints) - 1)) channel values for (T, 17, 3) BVH-axes joints: the pelvis position, then
    each joint's Z, X, Y rotation in degrees, in file order."""
    local = solve_rotations(joints)
    cols = [joints[:, 0]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # gimbal lock: the angles still give the same rotation
        cols += [local[jt.name].as_euler("ZXY", degrees=True) for jt in file_joints]
    return np.concatenate(cols, axis=1)


__all__ = ["NAMES", "PARENTS", "REST_DIRS", "TO_BVH", "BvhJoint", "hierarchy", "solve_rotations", "motion_rows",
           "write_header", "bone_lengths", "to_bvh_axes", "minimal_rotation", "kabsch"]
