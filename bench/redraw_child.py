"""Child process of the redraw benchmark (needs QT_QPA_PLATFORM=offscreen): prints one JSON line.

Switching the shown head of a size x size attention map, in one run, interleaved:

- pyqtgraph: ``ImageItem.setImage(map, levels=(lo, hi), autoLevels=False)`` with a 256-entry LUT
  in a PlotItem, then the Qt event loop is processed until that ImageItem has painted again
  (``paint`` is where pyqtgraph turns the array into a QImage). Also timed separately:
  the same plus ``widget.grab()``, a full offscreen render of the widget into a pixmap.
- matplotlib (STEVE's way): an ``imshow(map, interpolation='bessel')`` image gets the new
  array with ``set_data`` and the Agg canvas is redrawn with ``canvas.draw()``.

``--window`` also measures the real main window (steve_qt.gui) when it exists: see
``bench.gui_probe``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from .common import emit


def fake_heads(size: int, count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` distinct attention-like maps (rows sum to 1, a diagonal band), C-contiguous."""
    rng = np.random.default_rng(seed)
    i = np.arange(size, dtype=np.float32)
    out = []
    for h in range(count):
        width = 5.0 + 10 * h
        band = np.exp(-((i[:, None] - i[None, :] - 3 * h) ** 2) / (2 * width ** 2))
        noise = rng.random((size, size), dtype=np.float32) * 0.2
        m = (band + noise).astype(np.float32)
        m /= m.sum(axis=1, keepdims=True)
        out.append(np.ascontiguousarray(m, dtype=np.float32))
    return out


class PyqtgraphMap:
    """A PlotWidget with one ImageItem that counts its paints."""

    def __init__(self, app, first: np.ndarray, side_px: int = 800):
        import pyqtgraph as pg

        counter = self

        class CountingImage(pg.ImageItem):
            def paint(self, p, *args):
                super().paint(p, *args)
                counter.paints += 1

        self.app = app
        self.paints = 0
        self.widget = pg.PlotWidget()
        self.widget.resize(side_px, side_px)
        self.image = CountingImage()
        self.lut = pg.colormap.get("viridis").getLookupTable(nPts=256)  # (256, 3) uint8
        self.image.setLookupTable(self.lut)
        self.widget.addItem(self.image)
        self.levels = (0.0, float(first.max()))
        self.image.setImage(first, levels=self.levels, autoLevels=False)
        self.widget.show()
        self.settle()

    def settle(self, limit: int = 200) -> None:
        before = self.paints
        for _ in range(limit):
            self.app.processEvents()
            if self.paints > before:
                return

    def switch(self, arr: np.ndarray) -> int:
        """New map, then run the event loop until the image has repainted; returns loop turns."""
        before = self.paints
        self.image.setImage(arr, levels=self.levels, autoLevels=False)
        turns = 0
        while self.paints == before and turns < 1000:
            self.app.processEvents()
            turns += 1
        return turns

    def switch_and_grab(self, arr: np.ndarray) -> None:
        self.switch(arr)
        self.widget.grab()


class MatplotlibMap:
    """STEVE's redraw: bessel-interpolated imshow, set_data, full canvas.draw() (Agg)."""

    def __init__(self, first: np.ndarray, inches: float = 8.0):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.fig = Figure(figsize=(inches, inches), dpi=100)
        self.canvas = FigureCanvasAgg(self.fig)
        ax = self.fig.add_subplot()
        self.im = ax.imshow(first, interpolation="bessel", cmap="viridis",
                            vmin=0.0, vmax=float(first.max()))
        self.canvas.draw()

    def switch(self, arr: np.ndarray) -> None:
        self.im.set_data(arr)
        self.canvas.draw()


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1500)
    ap.add_argument("--repeats", type=int, default=60)
    ap.add_argument("--mpl-repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--window", action="store_true", help="also the real main window")
    args = ap.parse_args()

    import pyqtgraph as pg

    app = pg.mkQApp()
    heads = fake_heads(args.size, 6)
    pgmap = PyqtgraphMap(app, heads[0])
    mplmap = MatplotlibMap(heads[0])
    per_round = max(1, args.repeats // max(args.mpl_repeats, 1))
    pg_t, grab_t, mpl_t, turns = [], [], [], []
    k = 0
    rounds = args.warmup + max(args.mpl_repeats, 1)
    for rnd in range(rounds):
        keep = rnd >= args.warmup
        for _ in range(per_round):  # A: pyqtgraph switch (event loop until repainted)
            k += 1
            t0 = time.perf_counter()
            n = pgmap.switch(heads[k % len(heads)])
            dt = time.perf_counter() - t0
            if keep:
                pg_t.append(dt)
                turns.append(n)
            k += 1  # A': the same and a full offscreen render of the widget
            dt = timed(pgmap.switch_and_grab, heads[k % len(heads)])
            if keep:
                grab_t.append(dt)
        if args.mpl_repeats > 0:  # B: matplotlib
            k += 1
            dt = timed(mplmap.switch, heads[k % len(heads)])
            if keep:
                mpl_t.append(dt)
    result = dict(pyqtgraph=pg_t, pyqtgraph_grab=grab_t, matplotlib=mpl_t,
                  event_loop_turns=turns, paints=pgmap.paints, size=args.size,
                  widget_px=[pgmap.widget.width(), pgmap.widget.height()],
                  mpl_px=[int(v) for v in mplmap.canvas.get_width_height()])
    if args.window:
        from . import gui_probe

        result["window"] = gui_probe.measure_main_window(app, heads, args.repeats, args.warmup)
    emit(result)


if __name__ == "__main__":
    main()
