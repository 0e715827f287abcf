"""Measurements in the real steve_qt main window (QT_QPA_PLATFORM=offscreen).

- ``measure_main_window``: switching head / layer of a 1500 x 1500 map in QtMainWindow's map
  view, through the document (``doc.attention.set_head`` / ``doc.attention.set_layer``, what the [ ] and PgUp/PgDn
  keys call), until the map's ImageItem has repainted.
- ``python -m bench.gui_probe FILE``: time to first map. Calls ``steve_qt.gui.app.run_gui([FILE])``
  unchanged; wrappers only stamp the time when the worker calls ``pipeline.get_adapter`` and
  ``pipeline.extract``, when ``core.previews.take`` hands over a preview, and when the map
  ImageItem first paints an image (and first paints the model's own maps); then the app quits.
"""

from __future__ import annotations

import time

T_MAIN = time.time()

import argparse  # noqa: E402
import atexit  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402

NOTE = ("Time to first map measured with the real GUI: `bench/gui_probe.py` calls "
        "`steve_qt.gui.app.run_gui([FILE])` unchanged (offscreen, a throw-away XDG_CONFIG_HOME "
        "so that recent-files settings are not touched) and stamps wall-clock times (seconds "
        "since the process was launched) when Qt has started, when the main window is built, "
        "when the extraction worker takes the torch-free encoder preview "
        "(`core.previews`; computed from start-up in a forked child while Qt starts and the "
        "window is built), when the attention map's ImageItem first paints an image, when "
        "`pipeline.get_adapter` returns the model (torch is imported after the preview has "
        "painted), when the adapter hands over its first partial result (its own encoder maps, "
        "which replace the preview), when the map first paints them, and when the whole "
        "extraction (transcript, word tier, cross- and decoder attention) has arrived. Then it "
        "opens a second file in the same window (`opener.open_paths`, as File > Open does) and times "
        "it until the map paints that file's maps (the model is loaded then: no preview). "
        "torch runs with the bench's thread count; the preview's numpy BLAS with one thread.")


def counting(item, on_paint) -> None:
    """Call ``on_paint(item)`` after each paint of ``item`` (a pg.ImageItem).

    The class's ``paint`` is wrapped once (for every ImageItem; others pass straight through):
    swapping one sip object's ``__class__`` crashes, and sip does not look at instance attributes.
    """
    import pyqtgraph as pg

    cls = pg.ImageItem
    if not hasattr(cls, "_bench_watch"):
        real = cls.paint
        watch: dict[int, object] = {}

        def paint(self, p, *args):
            real(self, p, *args)
            cb = watch.get(id(self))
            if cb is not None:
                cb(self)

        cls.paint = paint
        cls._bench_watch = watch
    cls._bench_watch[id(item)] = on_paint


# --- redraw in the main window ------------------------------------------------------------------

def fake_extraction(heads: list[np.ndarray], num_layers: int = 4):
    """Encoder maps (num_layers, 1, M, Q, K) float16 built from the given (Q, K) maps."""
    from steve_qt.core.models.adapters import Extraction, Transcript
    from steve_qt.core.attention.maps import AttentionMaps
    from steve_qt.core.frames import whisper_grid

    m, q = len(heads), heads[0].shape[0]
    w = np.empty((num_layers, 1, m, q, q), np.float16)
    for n in range(num_layers):
        for h in range(m):  # every (layer, head) differs, row maxima too, as in real maps
            w[n, 0, h] = heads[(h + n) % m] * (1.0 - 0.1 * n)
    maps = AttentionMaps(w, None, np.zeros((num_layers, m, q), np.float32), "encoder",
                         model="bench", sample_rate=16000, num_samples=q * 320,
                         query_grid=whisper_grid(0), key_grid=whisper_grid(0))
    return Extraction({"encoder": maps}, Transcript(), "bench")


def measure_main_window(app, heads: list[np.ndarray], repeats: int, warmup: int) -> dict:
    from steve_qt.core.speech.audio import from_array
    from steve_qt.core.models.pipeline import Utterance
    from steve_qt.gui.app import configure_pyqtgraph
    from steve_qt.gui.main_window import QtMainWindow

    from .common import synthetic_speechlike

    configure_pyqtgraph()
    q = heads[0].shape[0]
    paints = [0]
    win = QtMainWindow(model="bench", auto_extract=False)
    counting(win.views.map_image, lambda _item: paints.__setitem__(0, paints[0] + 1))
    win.show()
    doc = win.doc
    index = doc.add(Utterance(from_array(synthetic_speechlike(q * 320), 16000), None, None))
    doc.set_extraction(index, doc.attention.model, 0, fake_extraction(heads))
    for _ in range(50):
        app.processEvents()
    num_heads = len(heads)

    def until_painted(change) -> float:
        before = paints[0]
        t0 = time.perf_counter()
        change()
        turns = 0
        while paints[0] == before and turns < 1000:
            app.processEvents()
            turns += 1
        return time.perf_counter() - t0

    head_t, layer_t = [], []
    for i in range(warmup + repeats):
        dt_h = until_painted(lambda: doc.attention.set_head(((doc.attention.head or 0) + 1) % num_heads))
        dt_l = until_painted(lambda: doc.attention.set_layer((doc.attention.layer + 1) % 4))
        if i >= warmup:
            head_t.append(dt_h)
            layer_t.append(dt_l)
    size = win.views.map.vb.size()
    shape = doc.attention.maps.weights.shape
    cache = getattr(win.views, "map_images", None)  # steve_qt.gui.map_images.MapImages
    counts = dict(hits=cache.hits, waited=cache.waited, misses=cache.misses,
                  prefetched=cache.prefetched) \
        if cache is not None else {}
    cold_t = []  # every switch to a head the window has not shown before: nothing cached
    if cache is not None:
        cache.prefetch = False
        for i in range(warmup + repeats):
            cache.clear()
            dt = until_painted(lambda: doc.attention.set_head(((doc.attention.head or 0) + 1) % num_heads))
            if i >= warmup:
                cold_t.append(dt)
    win.close()
    return dict(
        how="next head (doc.attention.set_head)", times=head_t, layer_times=layer_t, images=counts,
        cold_how="head not shown before (image cache emptied, no prefetch)", cold_times=cold_t,
        note=(f"Real main window (steve_qt/gui, QtMainWindow 1280×900, map view "
              f"{int(size.width())}×{int(size.height())} px) with an encoder extraction of shape "
              f"{tuple(shape)} float16 built from the same maps (contents do not matter for "
              "drawing): head and layer switches go through the document as the [ ] and "
              "PgUp/PgDn keys do (`doc.attention.set_head` / `doc.attention.set_layer`: the head's colour indices "
              "and levels, `setImage`, colour bar, title, query profile, head overview and "
              "statistics panels) and are timed until the map's ImageItem has painted. Layer "
              "switch: median "
              f"{np.median(layer_t) * 1e3:.1f} ms, max {max(layer_t) * 1e3:.1f} ms."
              + (" The window keeps display-ready images in an LRU and computes the next head "
                 "and the next layer in a background thread, which is the order this loop "
                 "steps in. Of all switches (head and layer, warm-up included) "
                 f"{counts['hits']} found the image ready, {counts['waited']} waited for the "
                 f"background thread to finish it, {counts['misses']} computed it themselves. "
                 "The 'not shown before' row empties that cache before every switch and turns "
                 "the background thread off: each switch computes its image (float16 bits → "
                 "colour indices) while the user waits."
                 if counts else "")
              if layer_t else "Real main window: no runs."))


# --- time to first map ---------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--second", help="then open this file in the running window and time its map")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=300, help="give up after (s)")
    args = ap.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    cfg_home = tempfile.mkdtemp(prefix="steve_bench_cfg_")
    atexit.register(shutil.rmtree, cfg_home, True)
    os.environ["XDG_CONFIG_HOME"] = cfg_home

    from steve_qt.core.models import pipeline
    from steve_qt.gui import app as gui_app  # light: Qt is imported by run_gui, as in steve-qt

    t_imports = time.time()
    stamps: dict[str, float] = {"t_imports": t_imports}
    real_get_adapter, real_extract = pipeline.get_adapter, pipeline.extract
    windows = []

    def get_adapter(spec=None, device=None):
        stamps.setdefault("t_load_start", time.time())
        import torch

        torch.set_num_threads(args.threads)
        out = real_get_adapter(spec, device)
        stamps.setdefault("t_load", time.time())
        return out

    def extract(*a, on_partial=None, **k):
        second = "t2_open" in stamps
        prefix = "t2_" if second else "t_"

        def partial(ex):
            stamps.setdefault(prefix + "partial", time.time())
            if on_partial is not None:
                on_partial(ex)

        stamps.setdefault(prefix + "extract_start", time.time())
        out = real_extract(*a, on_partial=partial, **k)
        stamps.setdefault(prefix + "extract", time.time())
        return out

    pipeline.get_adapter, pipeline.extract = get_adapter, extract
    from steve_qt.core.models import previews

    real_take = previews.take

    def take(*a, **k):
        out = real_take(*a, **k)
        if out is not None:
            stamps.setdefault("t_preview", time.time())
        return out

    previews.take = take
    real_init = real_win_init = None

    def quit_app() -> None:
        from PyQt6 import QtCore, QtWidgets

        QtCore.QTimer.singleShot(0, QtWidgets.QApplication.instance().quit)

    def open_second() -> None:
        stamps["t2_open"] = time.time()
        windows[0].opener.open_paths([args.second])

    def on_idle() -> None:
        # the first file's extraction is complete: open the second one, or stop
        if "t_drawn" in stamps and "t_model_drawn" in stamps and "t_extract" in stamps \
                and "t2_open" not in stamps:
            from PyQt6 import QtCore

            if args.second:
                QtCore.QTimer.singleShot(100, open_second)
            else:
                quit_app()

    def win_init(self, *a, **k):
        real_win_init(self, *a, **k)
        stamps["t_window"] = time.time()
        stamps["torch_imported_by_window"] = "torch" in sys.modules
        windows.append(self)
        self.queue.idle.connect(on_idle)

    def init(self, *a, **k):
        real_init(self, *a, **k)

        def on_paint(item) -> None:
            if item.image is None:
                return
            if "t_drawn" not in stamps and any(k in stamps for k in
                                               ("t_preview", "t_partial", "t_extract")):
                stamps["t_drawn"] = time.time()
                stamps["first_paint_preview"] = previews.is_preview(windows[0].doc.attention.extraction)
                on_idle()
            if ("t_model_drawn" not in stamps and windows and windows[0].doc.attention.extraction
                    is not None and not previews.is_preview(windows[0].doc.attention.extraction)):
                stamps["t_model_drawn"] = time.time()
                on_idle()
            elif ("t2_open" in stamps and "t2_drawn" not in stamps and windows
                  and windows[0].doc.attention.maps is not None
                  and windows[0].doc.utterance.path.name == os.path.basename(args.second)):
                stamps["t2_drawn"] = time.time()
                quit_app()

        counting(self.map_image, on_paint)
        from PyQt6 import QtCore, QtWidgets

        QtCore.QTimer.singleShot(int(args.timeout * 1000), QtWidgets.QApplication.instance().quit)

    real_make_app = gui_app.make_app

    def make_app(*a, **k):  # run_gui calls it after starting the model preload: patch Qt now
        app = real_make_app(*a, **k)
        from steve_qt.gui import main_window, time_views

        nonlocal real_init, real_win_init
        real_init = time_views.QtTimeViews.__init__
        real_win_init = main_window.QtMainWindow.__init__
        time_views.QtTimeViews.__init__ = init
        main_window.QtMainWindow.__init__ = win_init
        stamps["t_qt"] = time.time()
        return app

    gui_app.make_app = make_app
    status = gui_app.run_gui([args.file])
    out = dict(t_main=T_MAIN, status=status, opened="steve_qt.gui.app.run_gui", **stamps)
    out["t_load_start"] = stamps.get("t_load_start", t_imports)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
