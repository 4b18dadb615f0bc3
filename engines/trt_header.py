"""The pose3d-rt TensorRT engine file: a small JSON header in front of the serialized plan.

A serialized TensorRT plan only runs with the TensorRT version and GPU architecture it was built for (and does
not say so until deserialization fails). The header lets the loader refuse a mismatched engine with a message
that says what to rebuild, and carries the ONNX model's metadata so the runtime can read the model family,
input size etc. from an engine exactly as from an ONNX file (docs/MMPOSE_BEHAVIOUR.md, TensorRT).

Layout::

    b"P3RTENG1" | uint32 little-endian N | N bytes UTF-8 JSON header | serialized plan (rest of the file)

Header keys (all required): ``tensorrt_version`` (``trt.__version__``), ``gpu_name``, ``compute_capability``
(``"8.6"``), ``precision`` (``"fp32"`` | ``"fp16"``), ``profiles`` (``{input name: [min, opt, max]}`` shapes),
``onnx_sha256`` (of the source ONNX), ``onnx_metadata`` (its ``metadata_props`` as ``{str: str}``),
``created_by`` (``"pose3d-rt <version>"``). Extra keys are kept (forward compatible).

Pure python: importing this module never imports tensorrt.
"""
from __future__ import annotations

import json
import os
import re
import struct
import tempfile
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from .errors import ModelError

MAGIC = b"P3RTENG1"
_LEN = struct.Struct("<I")
PREFIX_SIZE = len(MAGIC) + _LEN.size
PRECISIONS = ("fp32", "fp16")
REQUIRED_KEYS = ("tensorrt_version", "gpu_name", "compute_capability", "precision", "profiles", "onnx_sha256",
                 "onnx_metadata", "created_by")
REBUILD_HINT = "rebuild it on this machine with `pose3d-rt build-engine MODEL.onnx -o ENGINE`"

PathLike = Union[str, "os.PathLike[str]"]


def _check_shape(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value)


def validate_header(header: Mapping[str, Any], source: str = "<engine header>") -> Dict[str, Any]:
    """Check the keys and value types of an engine header; return it as a plain dict.

    Raises :class:`ModelError` naming ``source`` and every missing or malformed field.
    """
    if not isinstance(header, Mapping):
        raise ModelError(f"{source}: engine header is a JSON {type(header).__name__}, expected an object")
    missing = [k for k in REQUIRED_KEYS if k not in header]
    if missing:
        raise ModelError(
            f"{source}: engine header lacks {', '.join(missing)} (written by an older or foreign tool?); "
            f"{REBUILD_HINT}"
        )
    problems = []
    for key in ("tensorrt_version", "gpu_name", "compute_capability", "onnx_sha256", "created_by"):
        if not isinstance(header[key], str) or not header[key]:
            problems.append(f"{key} must be a non-empty string")
    if isinstance(header["compute_capability"], str) and not re.fullmatch(r"\d+\.\d+", header["compute_capability"]):
        problems.append(f"compute_capability {header['compute_capability']!r} is not 'major.minor'")
    if header["precision"] not in PRECISIONS:
        problems.append(f"precision {header['precision']!r} is not one of {PRECISIONS}")
    profiles = header["profiles"]
    if not isinstance(profiles, Mapping):
        problems.append("profiles must map input names to [min, opt, max] shapes")
    else:
        for name, shapes in profiles.items():
            ok = isinstance(shapes, list) and len(shapes) == 3 and all(_check_shape(s) for s in shapes) \
                and len({len(s) for s in shapes}) == 1
            if not ok:
                problems.append(f"profiles[{name!r}] must be [min, opt, max] shapes of equal rank")
            elif not all(a <= b <= c for a, b, c in zip(*shapes)):
                problems.append(f"profiles[{name!r}] must satisfy min <= opt <= max")
    meta = header["onnx_metadata"]
    if not isinstance(meta, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        problems.append("onnx_metadata must map strings to strings")
    if problems:
        raise ModelError(f"{source}: bad engine header: {'; '.join(problems)}")
    return dict(header)


def encode_header(header: Mapping[str, Any]) -> bytes:
    """The file prefix (magic + length + JSON) for ``header`` (validated)."""
    body = json.dumps(validate_header(header), sort_keys=True, separators=(",", ":")).encode("utf-8")
    return MAGIC + _LEN.pack(len(body)) + body


def write_engine_file(path: PathLike, header: Mapping[str, Any], plan: Union[bytes, bytearray, memoryview]) -> Path:
    """Write ``header`` + ``plan`` to ``path`` atomically (a temp file in the same folder, then ``os.replace``).

    ``plan`` is ``builder.build_serialized_network(...)`` (anything with the buffer protocol). Returns the path.
    """
    path = Path(path)
    plan_bytes = memoryview(plan).cast("B") if not isinstance(plan, (bytes, bytearray)) else plan
    if len(plan_bytes) == 0:
        raise ModelError(f"{path}: refusing to write an engine with an empty plan (the TensorRT build failed?)")
    prefix = encode_header(header)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(prefix)
            fh.write(plan_bytes)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def read_engine_header(path: PathLike) -> Dict[str, Any]:
    """Only the header of an engine file (reads the prefix, not the plan)."""
    header, _ = _read(path, with_plan=False)
    return header


def read_engine_file(path: PathLike) -> Tuple[Dict[str, Any], bytes]:
    """``(header, plan)`` of an engine file written by :func:`write_engine_file`.

    Raises :class:`ModelError` naming the file when it is missing, a folder, too short, lacks the magic (a bare
    TensorRT plan or another file), or its header is not valid JSON / lacks fields.
    """
    header, plan = _read(path, with_plan=True)
    assert plan is not None
    return header, plan


def _read(path: PathLike, with_plan: bool) -> Tuple[Dict[str, Any], Optional[bytes]]:
    p = Path(path)
    if not p.exists():
        raise ModelError(f"{p}: no such engine file")
    if p.is_dir():
        raise ModelError(f"{p}: is a directory, expected a TensorRT engine file")
    try:
        with open(p, "rb") as fh:
            prefix = fh.read(PREFIX_SIZE)
            if len(prefix) < len(MAGIC) or prefix[: len(MAGIC)] != MAGIC:
                if len(prefix) == 0:
                    raise ModelError(f"{p}: empty file, expected a pose3d-rt TensorRT engine")
                raise ModelError(
                    f"{p}: not a pose3d-rt engine file (no {MAGIC.decode()} header; a bare TensorRT plan or "
                    f"another file type?); {REBUILD_HINT}"
                )
            if len(prefix) < PREFIX_SIZE:
                raise ModelError(f"{p}: truncated engine file ({len(prefix)} bytes, the header length is missing)")
            (n,) = _LEN.unpack(prefix[len(MAGIC):])
            body = fh.read(n)
            if len(body) < n:
                raise ModelError(
                    f"{p}: truncated engine file (header declares {n} bytes, only {len(body)} present)"
                )
            plan = fh.read() if with_plan else None
    except OSError as exc:
        raise ModelError(f"{p}: cannot read engine file ({exc.strerror or exc})") from None
    try:
        header = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{p}: corrupt engine header (not UTF-8 JSON: {exc})") from None
    header = validate_header(header, str(p))
    if with_plan and not plan:
        raise ModelError(f"{p}: truncated engine file (header present, serialized plan missing)")
    return header, plan


def _version_tuple(v: str) -> Tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v))


def _short_version(v: str) -> str:
    return ".".join(str(x) for x in _version_tuple(v)[:2]) or v


def engine_compatibility_problem(header: Mapping[str, Any], tensorrt_version: str, gpu_name: str,
                                 compute_capability: str, *, strict_gpu_name: bool = False) -> Optional[str]:
    """The reason an engine built as ``header`` describes cannot run here, or ``None`` if it can.

    Rules: the TensorRT version must be the same release (numeric components compared, so ``10.3.0.26`` ==
    ``10.3.0.26``; ``10.3.0`` != ``10.0.1``); the compute capability must be equal (plans hold kernels for one
    architecture). A different GPU model of the same architecture is allowed (TensorRT then only warns about
    possibly slower tactics) unless ``strict_gpu_name``.
    """
    built_v, here_v = str(header.get("tensorrt_version", "?")), str(tensorrt_version)
    built_cc, here_cc = str(header.get("compute_capability", "?")), str(compute_capability)
    built_gpu, here_gpu = str(header.get("gpu_name", "?")), str(gpu_name)
    reasons = []
    if _version_tuple(built_v) != _version_tuple(here_v):
        reasons.append("TensorRT version")
    if _version_tuple(built_cc) != _version_tuple(here_cc):
        reasons.append("GPU architecture")
    elif strict_gpu_name and built_gpu.strip() != here_gpu.strip():
        reasons.append("GPU model")
    if not reasons:
        return None

    def fmt(v: str) -> str:
        # full versions are only needed when the short forms look equal
        return v if _short_version(built_v) == _short_version(here_v) else _short_version(v)

    return (
        f"built for TensorRT {fmt(built_v)} on {built_gpu!r} (sm {built_cc}); this machine has TensorRT "
        f"{fmt(here_v)} on {here_gpu!r} (sm {here_cc}) - {' and '.join(reasons)} differ; {REBUILD_HINT}"
    )


def check_engine_compatibility(header: Mapping[str, Any], tensorrt_version: str, gpu_name: str,
                               compute_capability: str, *, source: Optional[str] = None,
                               strict_gpu_name: bool = False) -> None:
    """Raise :class:`ModelError` (naming ``source``) if the engine cannot run with this TensorRT / GPU."""
    problem = engine_compatibility_problem(header, tensorrt_version, gpu_name, compute_capability,
                                           strict_gpu_name=strict_gpu_name)
    if problem is not None:
        raise ModelError(f"{source}: {problem}" if source else problem)
