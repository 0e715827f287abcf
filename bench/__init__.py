"""steve_qt benchmarks: ``python -m bench [--quick] [--only NAME]``.

Each measurement lives in its own module and exposes ``run(cfg: Config) -> Section``; ``__main__``
runs them and (re)writes ``bench/RESULTS.md``. Nothing here asserts on time: the numbers are
recorded, compared with their targets, and the verdict written down.

=============  =====================================================================
name           what
=============  =====================================================================
capture        encoder capture / bare forward (Whisper tiny.en, wav2vec 2.0 base)
baseline       ours vs the STEVE recipe (time, peak memory, stored bytes)
memory         peak memory of one extraction for 1, 3, 10, 30 s (fresh process each)
redraw         switching head on a 1500 x 1500 map: pyqtgraph vs matplotlib
first_map      ``steve-qt FILE`` to the first map drawn
=============  =====================================================================
"""
