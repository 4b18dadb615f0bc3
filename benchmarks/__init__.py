"""Benchmarks of pose3d-rt (a developer tool of the source checkout, not part of the installed package).

``python -m benchmarks`` (= ``make bench``) runs every benchmark and writes ``benchmarks/results/``;
``pose3d-rt bench`` times any models you give it. The files:

- ``run.py``        every benchmark, each in its own process (``python -m benchmarks``)
- ``stages.py``     speed per stage and end to end on the fixture models, and the network kernels
- ``visualize.py``  ms per rendered frame of the visualizer
- ``memory.py``     peak RSS against stream length
- ``bench.py``      the ``pose3d-rt bench`` command: its arguments and the run
- ``measure.py``    one measurement per stage (det, pose2d, lifter, vis, e2e) with its mmpose-demo baseline
- ``reference.py``  rows quoted from the real mmpose demo's timing file
- ``core.py``       rows, statistics, ratios, Markdown tables, environment, atomic report writing
- ``synthetic.py``  synthetic frames, video, 2D tracks, boxes and frame results
- ``fakes.py``      scripted engines with the real models' signatures (``--synthetic``; also used by the tests)
"""
