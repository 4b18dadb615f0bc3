"""Model zoo: the alias data file, look-ups, and the downloader against a local HTTP server (127.0.0.1 only)."""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import threading
from dataclasses import dataclass, field, fields, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List, Optional

import pytest
from pose3d_rt import hub
from pose3d_rt.engines.errors import ModelError
from pose3d_rt.errors import InputError
from pose3d_rt.hub import cache, download, registry, resolve
from pose3d_rt.hub.roles import Role

ZOO_JSON = Path(registry.__file__).parent / "data" / "models.json"
ROLES = [r.value for r in Role]
BODY_SIZE = 200_000

# The reference invocation of the mmpose demo: the zoo's defaults must be exactly these.
SEED_URLS = {
    "detector": "https://download.openmmlab.com/mmpose/v1/projects/rtmpose/"
                "rtmdet_m_8xb32-100e_coco-obj365-person-235e8209.pth",
    "pose2d": "https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/"
              "rtmpose-m_simcc-body7_pt-body7_420e-256x192-e48f03d0_20230504.pth",
    "lifter": "https://download.openmmlab.com/mmpose/body3d/videopose/"
              "videopose_h36m_243frames_fullconv_supervised_cpn_ft-88f5abbb_20210527.pth",
}


# ------------------------------------------------------------------------------------------- local HTTP server


@dataclass
class ServerState:
    files: Dict[str, bytes] = field(default_factory=dict)
    requests: List[Dict[str, Optional[str]]] = field(default_factory=list)
    truncate_at: Optional[int] = None  # bytes of the body to send before closing the connection
    truncate_times: int = 0  # how many (next) responses to truncate; -1 = always
    drop_times: int = 0  # how many (next) requests to answer by closing the connection without a response
    status_queue: List[int] = field(default_factory=list)  # statuses to answer the next requests with
    ignore_range: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def _make_handler(state: ServerState):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: closing = end of the body

        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_GET(self):  # noqa: N802 (http.server API)
            with state.lock:
                state.requests.append({"path": self.path, "range": self.headers.get("Range")})
                if state.drop_times:
                    state.drop_times -= 1
                    return  # no status line at all: the client sees the connection closed
                status = state.status_queue.pop(0) if state.status_queue else None
                truncate = state.truncate_times != 0 and state.truncate_at is not None
                if truncate and state.truncate_times > 0:
                    state.truncate_times -= 1
            if status is not None:
                self.send_error(status)
                return
            body = state.files.get(self.path.lstrip("/"))
            if body is None:
                self.send_error(404)
                return
            start = 0
            m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
            if m and not state.ignore_range:
                start = int(m.group(1))
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            payload = body[start:]
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            if truncate:
                payload = payload[: state.truncate_at]
            self.wfile.write(payload)
            self.wfile.flush()

    return Handler


@pytest.fixture
def server():
    """``(base_url, state)`` of a fresh HTTP server on 127.0.0.1 with an ephemeral port."""
    state = ServerState()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    """Point the cache at a tmp dir and make sure no proxy intercepts 127.0.0.1."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    root = tmp_path / "home"
    monkeypatch.setenv("POSE3D_RT_HOME", str(root))
    return root


def _blob(seed: int = 0, size: int = BODY_SIZE) -> tuple:
    """(bytes, sha256 hex, published-style file name carrying the sha256 prefix)."""
    data = random.Random(seed).randbytes(size)
    digest = hashlib.sha256(data).hexdigest()
    return data, digest, f"model_{seed}-{digest[:8]}_20240101.pth"


def _fetch(target, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("backoff", 0.0)
    kw.setdefault("timeout", 5)
    return hub.fetch(target, **kw)


def _leftovers(home: Path, name: str) -> List[str]:
    d = home / "checkpoints"
    return sorted(p.name for p in d.glob(name + "*") if not p.name.endswith(".lock")) if d.exists() else []


# ------------------------------------------------------------------------------------------------ downloader


def test_fetch_success_then_cached(server, home):
    base, state = server
    data, digest, name = _blob(1)
    state.files[name] = data
    out = _fetch(f"{base}/{name}")
    assert out == home / "checkpoints" / name
    assert out.read_bytes() == data
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
    assert len(state.requests) == 1 and state.requests[0]["range"] is None
    assert _leftovers(home, name) == [name]  # no .part left behind
    again = _fetch(f"{base}/{name}")
    assert again == out and len(state.requests) == 1  # served from the cache, no request
    assert hub.path(f"{base}/{name}") == out


def test_fetch_alias_through_entry(server, home, monkeypatch):
    base, state = server
    data, digest, name = _blob(2)
    state.files[name] = data
    entry = replace(hub.get("rtmpose-t"), url=f"{base}/{name}", mirrors=(), file_name=name, sha256_prefix=digest[:8])
    monkeypatch.setattr(registry, "_registry", lambda: {"rtmpose-t": entry})
    assert hub.path("rtmpose-t") == home / "checkpoints" / name
    out = _fetch("rtmpose-t")
    assert out.read_bytes() == data
    assert hub.resolve_path("RTMPose-T", "pose2d", progress=False) == out  # aliases are case-insensitive
    assert len(state.requests) == 1


def test_404_is_a_clear_error_without_retries(server, home):
    base, state = server
    _, _, name = _blob(3)
    url = f"{base}/{name}"
    with pytest.raises(ModelError, match=re.escape(f"{url}: HTTP 404 Not Found")):
        _fetch(url, retries=3)
    assert len(state.requests) == 1
    assert _leftovers(home, name) == []


def test_5xx_and_dropped_connection_are_retried(server, home):
    base, state = server
    data, _, name = _blob(4)
    state.files[name] = data
    state.status_queue = [503, 500]
    state.drop_times = 0
    out = _fetch(f"{base}/{name}", retries=3)
    assert out.read_bytes() == data and len(state.requests) == 3

    data2, _, name2 = _blob(5)
    state.files[name2] = data2
    state.drop_times = 1
    out2 = _fetch(f"{base}/{name2}", retries=1)
    assert out2.read_bytes() == data2
    assert len(state.requests) == 5


def test_5xx_forever_gives_up(server, home):
    base, state = server
    data, _, name = _blob(6)
    state.files[name] = data
    state.status_queue = [503] * 10
    with pytest.raises(ModelError, match=r"HTTP 503 Service Unavailable \(gave up after 3 attempts\)"):
        _fetch(f"{base}/{name}", retries=2)
    assert len(state.requests) == 3
    assert not (home / "checkpoints" / name).exists()


def test_truncated_body_resumes_with_range(server, home):
    base, state = server
    data, _, name = _blob(7)
    state.files[name] = data
    state.truncate_at, state.truncate_times = 70_000, 1
    out = _fetch(f"{base}/{name}", retries=2)
    assert out.read_bytes() == data
    assert [r["range"] for r in state.requests] == [None, "bytes=70000-"]


def test_truncated_body_forever_is_an_error_and_no_final_file(server, home):
    base, state = server
    data, _, name = _blob(8)
    state.files[name] = data
    state.truncate_at, state.truncate_times = 1000, -1
    with pytest.raises(ModelError, match=r"truncated body: received 1000 of \d+ bytes \(gave up after 3 attempts\)"):
        _fetch(f"{base}/{name}", retries=2)
    assert len(state.requests) == 3
    # every retry resumed where the previous one stopped
    assert [r["range"] for r in state.requests] == [None, "bytes=1000-", "bytes=2000-"]
    assert not (home / "checkpoints" / name).exists()
    part = home / "checkpoints" / (name + ".part")
    assert part.read_bytes() == data[:3000]  # kept for a later resume, never under the final name


def test_wrong_hash_deletes_the_download(server, home):
    base, state = server
    data, digest, _ = _blob(9)
    wrong = "0badf00d" if not digest.startswith("0badf00d") else "deadbeef"
    name = f"model-{wrong}_20240101.pth"
    state.files[name] = data
    with pytest.raises(ModelError) as info:
        _fetch(f"{base}/{name}")
    msg = str(info.value)
    assert f"expected a hash starting with {wrong}" in msg and digest in msg
    assert _leftovers(home, name) == []
    assert len(state.requests) == 1


def test_resume_from_existing_part(server, home):
    base, state = server
    data, _, name = _blob(10)
    state.files[name] = data
    cache = home / "checkpoints"
    cache.mkdir(parents=True)
    (cache / (name + ".part")).write_bytes(data[:50_000])
    out = _fetch(f"{base}/{name}")
    assert out.read_bytes() == data
    assert [r["range"] for r in state.requests] == ["bytes=50000-"]
    assert _leftovers(home, name) == [name]


def test_stale_part_with_wrong_bytes_restarts_once(server, home):
    base, state = server
    data, _, name = _blob(11)
    state.files[name] = data
    cache = home / "checkpoints"
    cache.mkdir(parents=True)
    (cache / (name + ".part")).write_bytes(b"\0" * 50_000)  # not the file's first bytes
    out = _fetch(f"{base}/{name}")
    assert out.read_bytes() == data
    assert [r["range"] for r in state.requests] == ["bytes=50000-", None]


def test_complete_part_and_server_without_range_support(server, home):
    base, state = server
    data, _, name = _blob(12)
    state.files[name] = data
    cache = home / "checkpoints"
    cache.mkdir(parents=True)
    (cache / (name + ".part")).write_bytes(data)  # finished but never renamed: the server answers 416
    assert _fetch(f"{base}/{name}").read_bytes() == data
    assert [r["range"] for r in state.requests] == [f"bytes={len(data)}-"]

    data2, _, name2 = _blob(13)
    state.files[name2] = data2
    state.ignore_range = True  # a 200 with the whole body: the .part is rewritten, not appended to
    (cache / (name2 + ".part")).write_bytes(data2[:30_000])
    assert _fetch(f"{base}/{name2}").read_bytes() == data2


def test_corrupt_cached_file_is_downloaded_again(server, home):
    base, state = server
    data, _, name = _blob(14)
    state.files[name] = data
    cache = home / "checkpoints"
    cache.mkdir(parents=True)
    (cache / name).write_bytes(data[:-1] + b"x")
    assert _fetch(f"{base}/{name}").read_bytes() == data
    assert len(state.requests) == 1


def test_url_without_hash_in_name_is_not_verified(server, home):
    base, state = server
    data, _, _ = _blob(15)
    state.files["weights.pth"] = data
    assert _fetch(f"{base}/weights.pth").read_bytes() == data


def test_mirror_is_tried_after_404(server, home):
    base, state = server
    data, digest, name = _blob(16)
    state.files["mirror/" + name] = data
    entry = replace(hub.get("rtmdet-m-person"), url=f"{base}/gone/{name}", mirrors=(f"{base}/mirror/{name}",),
                    file_name=name, sha256_prefix=digest[:8])
    assert _fetch(entry).read_bytes() == data
    assert [r["path"] for r in state.requests] == [f"/gone/{name}", f"/mirror/{name}"]


def test_connection_refused_is_a_model_error(home):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ModelError, match=r"network error.*gave up after 2 attempts"):
        _fetch(f"http://127.0.0.1:{port}/x-0123abcd.pth", retries=1)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("rtmdet_m_8xb32-100e_coco-obj365-person-235e8209.pth", "235e8209"),
        ("rtmpose-m_simcc-body7_pt-body7_420e-256x192-e48f03d0_20230504.pth", "e48f03d0"),
        ("videopose_h36m_243frames_fullconv_supervised_cpn_ft-88f5abbb_20210527.pth", "88f5abbb"),
        ("model-12345678_20230504.pth", "12345678"),  # all digits, but followed by the date: a hash
        ("model-20230504.pth", None),  # looks like a date, not taken as a hash
        ("model.pth", None),
        ("model-ABCDEF12.pth", None),  # published prefixes are lower-case
    ],
)
def test_expected_prefix_from_name(name, expected):
    assert hub.expected_prefix_from_name(name) == expected


# ------------------------------------------------------------------------------------------ look-up and resolve


def test_get_and_close_matches():
    e = hub.get("rtmpose-m")
    assert (e.role, e.family, e.input_size, e.sha256_prefix) == ("pose2d", "rtmpose", (192, 256), "e48f03d0")
    assert hub.get("VideoPose3D-243F-SUPV-CPN-FT").receptive_field == 243
    with pytest.raises(InputError, match=r"unknown model alias 'rtmpose_m'; did you mean 'rtmpose-m'"):
        hub.get("rtmpose_m")
    with pytest.raises(InputError, match=r"unknown model alias 'zzz' \(known aliases: .*human3d"):
        hub.get("zzz")


def test_list_models_and_defaults():
    roles = {r: hub.list_models(r) for r in ROLES}
    assert sum(len(v) for v in roles.values()) == len(hub.list_models())
    assert all(e.role == r for r, es in roles.items() for e in es)
    assert [e.alias for e in hub.list_models("2D pose model")] == [e.alias for e in roles["pose2d"]]
    assert {r: hub.get(a).url for r, a in hub.defaults().items()} == SEED_URLS
    assert [e.alias for e in hub.list_models() if e.default] == list(hub.defaults().values())
    assert hub.default_alias("lifter") == "videopose3d-243f-supv-cpn-ft"
    with pytest.raises(InputError, match="unknown model role 'segmenter'"):
        hub.list_models("segmenter")


def test_one_cache_home_and_one_sha256(home):
    assert hub.cache_home is cache.cache_home and hub.file_sha256 is cache.file_sha256
    for module in (registry, download, resolve):  # no second copy in the other hub modules
        assert not any(hasattr(module, name) and getattr(module, name) is not getattr(cache, name)
                       for name in ("cache_home", "file_sha256"))
    assert hub.cache_home() == home
    assert hub.path("rtmdet-m-person") == home / "checkpoints" / "rtmdet_m_8xb32-100e_coco-obj365-person-235e8209.pth"


def test_resolve_path_paths_and_errors(tmp_path, server, home):
    base, state = server
    f = tmp_path / "det.onnx"
    f.write_bytes(b"x")
    assert hub.resolve_path(f, "detector") == f
    assert hub.resolve_path(str(f), "detector") == f
    data, _, name = _blob(17)
    state.files[name] = data
    assert hub.resolve_path(f"{base}/{name}", "lifter", progress=False, backoff=0.0).read_bytes() == data

    with pytest.raises(InputError, match=r"^alias 'rtmpose-m' is a pose2d model, not a detector; "
                                         r"detector aliases: rtmdet-m-person \(default\), rtmdet-nano-person$"):
        hub.resolve_path("rtmpose-m", "detector")
    with pytest.raises(InputError, match="alias 'rtmdet-nano-person' is a detector model, not a lifter"):
        hub.resolve_path("rtmdet-nano-person", "lifter")
    unsupported = replace(hub.get("human3d"), supported=False)  # every zoo entry is supported today
    with pytest.raises(ModelError, match="'human3d'.*not yet supported"):
        hub.resolve_path(unsupported, "lifter")
    with pytest.raises(InputError, match=r"'missing\.onnx' given for the pose2d: no such file\. Specify a model as"):
        hub.resolve_path("missing.onnx", "pose2d")
    with pytest.raises(InputError, match=r"'rtmdet-m' given for the detector: not an existing file, an http\(s\) "
                                         r"URL or a known model alias\. Did you mean 'rtmdet-m-person'\?"):
        hub.resolve_path("rtmdet-m", "detector")
    assert len(state.requests) == 1  # no error case reached the network


def test_role_spellings_labels_and_flags():
    assert [r.value for r in Role] == ["detector", "pose2d", "lifter"]
    for spelling, role in [("det", Role.DETECTOR), ("Person Detector", Role.DETECTOR), ("2D pose model", Role.POSE2D),
                           ("pose", Role.POSE2D), (" pose2d ", Role.POSE2D), ("3d", Role.LIFTER),
                           ("pose lifter", Role.LIFTER), (Role.LIFTER, Role.LIFTER)]:
        assert Role.parse(spelling) is role, spelling
    assert [(r.label, r.flag) for r in Role] == [("detector", "--det"), ("2D pose model", "--pose2d"),
                                                 ("lifter", "--lifter")]
    assert Role.POSE2D == "pose2d" and f"{Role.POSE2D}" == "pose2d"
    with pytest.raises(InputError, match=r"^unknown model role 'segmenter'; expected one of detector, pose2d, lifter$"):
        Role.parse("segmenter")


def test_classify_every_kind_without_network(tmp_path, server):
    base, state = server
    f = tmp_path / "det.onnx"
    f.write_bytes(b"x")

    class FakeEngine:
        inputs = outputs = ()

        def run(self, feeds):
            return {}

    engine = FakeEngine()
    assert hub.classify(engine, "detector") == hub.ModelRef("engine", Role.DETECTOR, engine)
    assert hub.classify("None", "lifter") == hub.ModelRef("none", Role.LIFTER, None)
    assert hub.classify(f, "det").kind == "path" and hub.classify(str(f), "det").value == f
    assert hub.classify(f"{base}/x-0123abcd.pth", "lifter").kind == "url"
    ref = hub.classify("RTMPose-M", "2D pose model")
    assert (ref.kind, ref.role, ref.value.alias, ref.remote) == ("alias", Role.POSE2D, "rtmpose-m", True)
    with pytest.raises(InputError, match=r"'none' given for the detector: not an existing file"):
        hub.check("none", "detector")  # "none" means "no model" for the lifter only
    assert hub.resolve(engine, Role.POSE2D) is engine and hub.resolve("none", Role.LIFTER) is None
    assert state.requests == []


def test_resolve_rejects_an_unknown_file_type_naming_the_role(tmp_path):
    f = tmp_path / "weights.bin"
    f.write_bytes(b"x")
    with pytest.raises(ModelError, match=r"weights\.bin: unknown model file type '\.bin' for the 2D pose model; "
                                         r"expected one of \.onnx, \.engine, \.plan, \.trt, \.pth, \.pt, \.ckpt$"):
        hub.resolve(f, "pose2d")


def test_fetch_and_export_wires_fetch_to_export_cached(server, home, monkeypatch):
    base, state = server
    data, digest, name = _blob(18)
    state.files[name] = data
    entry = replace(hub.get("videopose3d-27f-supv"), url=f"{base}/{name}", mirrors=(), file_name=name,
                    sha256_prefix=digest[:8])
    calls = []
    monkeypatch.setattr(cache, "export_cached", lambda ckpt, role, opts=None: calls.append((ckpt, role, opts)) or
                        Path(str(ckpt) + ".onnx"))
    out = hub.fetch_and_export(entry, {"form": "strided"}, progress=False)
    assert calls == [(home / "checkpoints" / name, "lifter", {"form": "strided"})]
    assert out == home / "checkpoints" / (name + ".onnx")
    with pytest.raises(ModelError, match="not yet supported"):
        hub.fetch_and_export(replace(hub.get("human3d"), supported=False))


# ------------------------------------------------------------------------------------------- data file integrity


def test_data_file_integrity():
    doc = json.loads(ZOO_JSON.read_text(encoding="utf-8"))
    entries = doc["models"]
    documented = set(doc["fields"])
    dataclass_fields = {f.name for f in fields(hub.ZooEntry)} - {"default"}
    assert documented == dataclass_fields
    aliases = [e["alias"] for e in entries]
    assert len({a.lower() for a in aliases}) == len(aliases), "aliases must be unique (case-insensitively)"
    for e in entries:
        assert set(e) == documented, e["alias"]
        assert e["role"] in ROLES, e["alias"]
        prefix = e["sha256_prefix"]
        assert re.fullmatch(r"[0-9a-f]{8}", prefix), e["alias"]
        assert hub.expected_prefix_from_name(e["file_name"]) == prefix, e["alias"]
        for url in [e["url"], *e["mirrors"]]:
            assert url.startswith("https://download.openmmlab.com/"), e["alias"]
            assert url.rsplit("/", 1)[1] == e["file_name"] and prefix in url, e["alias"]
        assert isinstance(e["verified"], bool) and isinstance(e["supported"], bool)
        assert e["licence"], e["alias"]
        if e["role"] == "lifter":
            assert e["receptive_field"] >= 1 and e["input_size"] == [e["receptive_field"], 17], e["alias"]
        else:
            assert e["receptive_field"] is None and len(e["input_size"]) == 2, e["alias"]
        if e["family"] == "videopose3d":
            assert "CC BY-NC 4.0" in e["licence"] and hub.get(e["alias"]).non_commercial
        if e["family"] in ("rtmdet", "rtmpose"):
            assert e["licence"].startswith("Apache-2.0") and not hub.get(e["alias"]).non_commercial
    assert set(doc["defaults"]) == set(ROLES)
    by_alias = {e["alias"]: e for e in entries}
    for role, alias in doc["defaults"].items():
        assert by_alias[alias]["role"] == role and by_alias[alias]["supported"]
    human3d = by_alias["human3d"]
    assert (human3d["role"], human3d["family"], human3d["supported"]) == ("lifter", "motionbert", True)


def test_data_file_variants_match_the_specs():
    """The variants docs/MMPOSE_BEHAVIOUR.md lists (sections RTMDet, RTMPose, VideoPose3D) are all present, with their
    receptive fields (= 3**num_stages of the TCN: kernel sizes all 3) and input sizes."""
    by_variant = {(e.family, e.variant): e for e in hub.list_models()}
    assert by_variant[("rtmdet", "nano-person-320")].input_size == (320, 320)
    assert by_variant[("rtmdet", "m-person-640")].input_size == (640, 640)
    expected_pose = {("t", "256x192"), ("s", "256x192"), ("m", "256x192"), ("l", "256x192"), ("m", "384x288"),
                     ("l", "384x288"), ("x", "384x288")}
    pose = {tuple(e.variant.split("-body7-")) for e in hub.list_models("pose2d")}
    assert pose == expected_pose
    for e in hub.list_models("pose2d"):
        h, w = (int(v) for v in e.variant.rsplit("-", 1)[1].split("x"))
        assert e.input_size == (w, h) and f"-{h}x{w}-" in e.file_name
    lifters = {e.variant: e.receptive_field for e in hub.list_models("lifter") if e.family == "videopose3d"}
    assert lifters == {"1f-supv-cpn-ft": 1, "27f-supv": 27, "81f-supv": 81, "243f-supv": 243,
                       "243f-supv-cpn-ft": 243, "27f-semi-supv": 27, "27f-semi-supv-cpn-ft": 27}
    for e in hub.list_models("lifter"):
        if e.family == "videopose3d":
            assert f"_{e.receptive_field}frame" in e.file_name
    assert all(os.path.basename(e.url) == e.file_name for e in hub.list_models())


def test_resolve_takes_an_alias_fetches_exports_and_caches(server, home, monkeypatch, checkpoints):
    """The Python API's model arguments accept aliases: fetched from the (local) server, hash-checked, exported."""
    base, state = server
    data = checkpoints["rtmpose_t_body8_256x192"].read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    name = f"rtmpose-t-fixture-{digest[:8]}_20240101.pth"
    state.files[name] = data
    entry = replace(hub.get("rtmpose-t"), url=f"{base}/{name}", mirrors=(), file_name=name, sha256_prefix=digest[:8])
    monkeypatch.setattr(registry, "_registry", lambda: {"rtmpose-t": entry})
    engine = hub.resolve("rtmpose-t", "2D pose model")
    assert engine.metadata["family"] == "rtmpose"
    assert [s.name for s in engine.outputs] == ["simcc_x", "simcc_y"]
    assert (home / "checkpoints" / name).read_bytes() == data
    assert len(list((home / "onnx").glob("*.onnx"))) == 1
    hub.resolve("rtmpose-t", "2D pose model")
    assert len(state.requests) == 1  # cached: no second download, no second export


def test_motionbert_entries_of_the_mmpose_metafile():
    """human3d and the other model of mmpose's motionbert_h36m.yml: URL, sha256 prefix from the file name, config,
    licence, window, supported; resolvable as lifters, refused as detectors (no network)."""
    base = "https://download.openmmlab.com/mmpose/v1/body_3d_keypoint/pose_lift/h36m/"
    want = {"human3d": ("motionbert_ft_h36m-d80af323_20230531.pth", "d80af323",
                        "motionbert_dstformer-ft-243frm_8xb32-120e_h36m.py"),
            "motionbert-h36m": ("motionbert_h36m-f554954f_20230531.pth", "f554954f",
                                "motionbert_dstformer-243frm_8xb32-240e_h36m.py")}
    got = {e.alias: e for e in hub.list_models("lifter") if e.family == "motionbert"}
    assert set(got) == set(want)
    for alias, (name, prefix, config) in want.items():
        e = got[alias]
        assert (e.url, e.file_name, e.sha256_prefix) == (base + name, name, prefix)
        assert hub.expected_prefix_from_name(e.file_name) == prefix
        assert e.config == "configs/body_3d_keypoint/motionbert/h36m/" + config
        assert e.licence.startswith("Apache-2.0") and not e.non_commercial
        assert (e.input_size, e.receptive_field, e.num_keypoints, e.supported) == ((243, 17), 243, 17, True)
        assert hub.classify(alias, "lifter").value is e
        with pytest.raises(InputError, match=f"alias '{alias}' is a lifter model, not a detector"):
            hub.check(alias, "detector")


def test_resolved_engines_are_checked_against_their_role(tmp_path):
    """An engine whose metadata family belongs to another role is refused naming the given file; no family: no
    check (the stage's own validation then applies)."""
    from pose3d_rt.hub.resolve import check_engine_role

    class Engine:
        inputs = outputs = ()

        def __init__(self, family=None):
            self.metadata = {"family": family} if family else {}

        def run(self, feeds):
            return {}

    given = tmp_path / "motionbert_ft_h36m-d80af323_20230531.pth"
    with pytest.raises(ModelError, match=r"d80af323_20230531\.pth: this is a motionbert model, a lifter, not a "
                                         r"detector \(give it to --lifter\)$"):
        check_engine_role(Engine("motionbert"), Role.DETECTOR, given)
    with pytest.raises(ModelError, match=r"this is a rtmdet model, a detector, not a 2D pose model \(give it to --det\)"):
        check_engine_role(Engine("rtmdet"), Role.POSE2D, given)
    for family, role in (("motionbert", Role.LIFTER), ("tcn", Role.LIFTER), ("rtmpose", Role.POSE2D), (None, Role.DETECTOR),
                         ("something-new", Role.DETECTOR)):
        engine = Engine(family)
        assert check_engine_role(engine, role, given) is engine
