"""Benchmarks of pose3d-rt (a developer tool of the source checkout, not part of the installed package).

``python -m benchmarks`` (= ``make bench``) runs every benchmark and writes ``benchmarks/results/``;
``pose3d-rt bench`` times any models you give it. The files:

- ``run.py``        every benchmark, each in its own process (``python -m benchmarks [--quick]``)
- ``stages.py``     make bench's speed tables: end to end (baseline vs the default mode FP32 / --det-interval 5 /
                    INT8, ONNX Runtime and OpenVINO), per stage (RTMDet square vs rect, FP32 vs INT8; RTMPose per
                    crop vs the rtmlib peer; windowed vs stream lifter), and the network kernels vs PyTorch
- ``visualize.py``  ms per rendered frame of the visualizer
- ``memory.py``     peak RSS against stream length
- ``bench.py``      the ``pose3d-rt bench`` command (one run configuration vs the baseline; ``--json``)
- ``pipelines.py``  the mmpose-demo-equivalent baseline pipeline and the run configurations (device, precision,
                    detection interval)
- ``measure.py``    the timed variants (det, pose2d, rtmlib, lifter, e2e, vis) and the interleaved measurement
- ``reference.py``  rows quoted from the real mmpose demo's timing file
- ``core.py``       rows, statistics, ratios, Markdown tables, environment (CPU model and flags), atomic reports
- ``synthetic.py``  synthetic frames, video, 2D tracks, boxes and frame results
- ``fakes.py``      scripted engines with the real models' signatures (``--synthetic``; also used by the tests)
"""
