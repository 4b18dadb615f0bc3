"""The batch on Ray: one actor per worker holding its engines, videos handed to actors as they free up.

``address=None`` starts a local Ray runtime for this batch (no dashboard, ``num_cpus`` = the actors' CPUs, worker
logs not forwarded) and stops it at the end; an address (``auto``, ``HOST:6379``, ``ray://HOST:10001``) joins an
existing cluster, where every node needs pose3d-rt installed and the inputs and DIR at the same paths (shared
storage): each actor reads its videos and writes its outputs there itself.

Each actor is a :class:`~pose3d_rt.batch.worker.VideoWorker` (models loaded once, in the actor), asking Ray for
``cpus`` CPUs and, for a CUDA/TensorRT device, one GPU (Ray picks it and sets ``CUDA_VISIBLE_DEVICES``, so the
actor uses its device 0). Actors are spread over the nodes. An actor that dies is restarted by Ray and its video
retried once (``max_task_retries=1``); a second death reports the video failed. ``ray`` is imported here only.
"""
from __future__ import annotations

import copy
import logging
from collections import deque
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Tuple

from ..errors import Pose3DError
from .inputs import VideoTask
from .manifest import VideoResult, failed
from .worker import JobSpec, VideoWorker, error_line

log = logging.getLogger(__name__)

GPU_DEVICES = ("cuda", "tensorrt")


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise Pose3DError("--ray needs the ray package: pip install 'pose3d-rt[ray]'") from None
    return ray


def wants_gpu(device: str) -> bool:
    return str(device).split(":")[0].lower() in GPU_DEVICES


def _actor_spec(spec: JobSpec) -> JobSpec:
    """With a GPU per actor, Ray makes the actor's GPU its device 0: ``cuda:1`` becomes ``cuda``."""
    if not wants_gpu(spec.args.device):
        return spec
    args = copy.copy(spec.args)
    args.device = str(args.device).split(":")[0]
    return JobSpec(args, spec.models, spec.output_root, spec.options)


def _start(ray: Any, address: Optional[str], cpus: int) -> bool:
    """Start or join Ray; True when this call started it (and must stop it)."""
    if ray.is_initialized():
        return False
    kw: Dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    if address is None:  # a runtime of this batch only, with this machine's loopback address as its node address
        kw.update(num_cpus=cpus, _node_ip_address="127.0.0.1")
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    try:
        ray.init(address=address, **kw)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = f"--ray {address}" if address else "--ray"
        raise Pose3DError(f"{where}: cannot start or join Ray ({error_line(exc)})") from None
    return True


def _actors(ray: Any, spec: JobSpec, workers: int, cpus_per_actor: int) -> List[Any]:
    gpus = 1 if wants_gpu(spec.args.device) else 0
    actor = ray.remote(VideoWorker).options(num_cpus=cpus_per_actor, num_gpus=gpus, max_restarts=-1,
                                            max_task_retries=1, scheduling_strategy="SPREAD")
    return [actor.remote(_actor_spec(spec)) for _ in range(workers)]


def _pump(ray: Any, actors: List[Any], queue: Deque[VideoTask], on_result: Callable[[VideoResult], None]) -> None:
    free = list(actors)
    running: Dict[Any, Tuple[VideoTask, Any]] = {}
    while queue or running:
        while queue and free:
            actor, task = free.pop(), queue.popleft()
            running[actor.process.remote(task)] = (task, actor)
        ready, _ = ray.wait(list(running), num_returns=1)
        for ref in ready:
            task, actor = running.pop(ref)
            free.append(actor)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as exc:  # the actor died twice on this video, or Ray failed it
                log.debug("%s: %s", task.input, exc)
                result = failed(task, f"the Ray worker failed on this video ({type(exc).__name__})")
            on_result(result)


def run_ray(spec: JobSpec, tasks: Iterable[VideoTask], workers: int, on_result: Callable[[VideoResult], None],
            address: Optional[str] = None, cpus_per_actor: int = 1) -> None:
    """Process ``tasks`` on ``workers`` Ray actors; ``on_result`` is called here for every video as it finishes."""
    ray = import_ray()
    queue: Deque[VideoTask] = deque(tasks)
    if not queue:
        return
    started = _start(ray, address, workers * cpus_per_actor)
    actors: List[Any] = []
    try:
        actors = _actors(ray, spec, min(workers, len(queue)), cpus_per_actor)
        _pump(ray, actors, queue, on_result)
    finally:
        for actor in actors:
            ray.kill(actor)
        if started:
            ray.shutdown()


__all__ = ["run_ray", "import_ray", "wants_gpu"]
