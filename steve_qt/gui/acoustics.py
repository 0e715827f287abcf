"""View > Acoustics: Praat's pitch, formants and intensity over the spectrogram view.

Drawn as Praat draws them: pitch as a blue line with its own Hz axis on the right, formants as
red dots on the spectrogram's frequency axis, intensity as a yellow line (50-100 dB, Praat's view
range). Each track is on or off in the menu; the tracks of a file are computed off the GUI thread
(:mod:`steve_qt.core.speech.acoustics`, parselmouth) the first time one is switched on and kept
while the file is open. Hovering over any time view shows the values at that time. A sound too
short for Praat shows no tracks and says so in the status bar.

One class, :class:`QtAcoustics`, draws onto a :class:`~steve_qt.gui.time_views.QtTimeViews`'s
spectrogram plot, listens to the document and puts View > Acoustics into the window's action
registry.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyqtgraph as pg
from PyQt6 import QtCore, QtGui, QtWidgets

from ..core.figures.acoustics import INTENSITY_VIEW_DB, OVERLAYS, PITCH_VIEW_HZ
from ..core.speech.acoustics import audio_tracks, sample_tracks

PITCH_PEN = pg.mkPen(QtGui.QColor(0, 0, 255), width=2)
INTENSITY_PEN = pg.mkPen(QtGui.QColor(230, 194, 0), width=2)
FORMANT_BRUSH = pg.mkBrush(255, 0, 0)
TITLES = {"pitch": "&Pitch", "formants": "&Formants", "intensity": "&Intensity"}


class QtAcoustics(QtCore.QObject):
    """Pitch, formant and intensity tracks over ``views.spec`` (see the module)."""

    arrived = QtCore.pyqtSignal(object)  # (audio, tracks or None, error text) from the worker

    def __init__(self, doc, views, actions=None, parent=None):
        super().__init__(parent)
        self.doc, self.views = doc, views
        self.shown = {name: False for name in OVERLAYS}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="steve-qt-acoustics")
        self._tracks: dict[int, tuple[object, object, str]] = {}  # id(audio) -> (audio, tracks, error)
        self._pending: set[int] = set()
        plot = views.spec
        # formants: red dots in the spectrogram's own coordinates
        self.formants = pg.ScatterPlotItem(size=3, pen=None, brush=FORMANT_BRUSH, pxMode=True)
        self.formants.setZValue(5)
        plot.addItem(self.formants)
        # pitch and intensity: view boxes of their own over the spectrogram, x linked to it
        self.pitch_vb = self._overlay_box(plot, PITCH_VIEW_HZ)
        self.intensity_vb = self._overlay_box(plot, INTENSITY_VIEW_DB)
        self.pitch_curve = pg.PlotDataItem(pen=PITCH_PEN, connect="finite")
        self.intensity_curve = pg.PlotDataItem(pen=INTENSITY_PEN, connect="finite")
        self.pitch_vb.addItem(self.pitch_curve)
        self.intensity_vb.addItem(self.intensity_curve)
        self.formants.setAcceptedMouseButtons(QtCore.Qt.MouseButton.NoButton)  # drags select
        axis = plot.getAxis("right")
        axis.linkToView(self.pitch_vb)
        axis.setLabel("pitch", units="Hz", color="#0000ff")
        axis.setPen(pg.mkPen("#0000ff"))
        axis.setTextPen(pg.mkPen("#0000ff"))
        plot.vb.sigResized.connect(self._fit_boxes)
        self.hover_text = pg.TextItem("", color=(20, 20, 20), anchor=(1, 0),
                                      fill=QtGui.QColor(255, 255, 255, 200))
        self.hover_text.setParentItem(plot.vb)
        self.hover_text.setZValue(10)
        self.arrived.connect(self._store)
        views.spectrograms.ready.connect(self.redraw)
        e = doc.events
        e.current.connect(lambda ev: self.redraw())
        e.spectrogram.connect(lambda ev: self.redraw())
        e.hover.connect(lambda ev: self._on_hover())
        self.redraw()

        if actions is not None:
            self.register_actions(actions)
        app = QtWidgets.QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    def register_actions(self, actions) -> None:
        """View > Acoustics: one checkable entry per track."""
        actions.add_menu("acoustics", actions.menu("view").addMenu("A&coustics"))
        for name in OVERLAYS:
            actions.register(f"acoustics:{name}", TITLES[name],
                             lambda on, n=name: self.set_shown(n, on),
                             description=f"Praat's {name} over the spectrogram",
                             menu="acoustics", checkable=True)

    def _overlay_box(self, plot: pg.PlotItem, y_range) -> pg.ViewBox:
        vb = pg.ViewBox(enableMouse=False)
        vb.setMouseEnabled(False, False)
        vb.setMenuEnabled(False)
        # drawn over the spectrogram, never in the way: pyqtgraph's scene hands drags and
        # clicks to the topmost enabled item with a mouse handler (a ViewBox accepts every
        # drag), so the overlay is disabled and they reach the spectrogram's own box
        vb.setEnabled(False)
        plot.scene().addItem(vb)
        vb.setXLink(plot.vb)
        vb.setYRange(*y_range, padding=0)
        vb.setZValue(10)  # above the plots of the layout; a ViewBox clips to its own rect
        return vb

    def _fit_boxes(self, *args) -> None:
        rect = self.views.spec.vb.sceneBoundingRect()
        for vb in (self.pitch_vb, self.intensity_vb):
            vb.setGeometry(rect)
            vb.linkedViewChanged(self.views.spec.vb, vb.XAxis)
        self.hover_text.setPos(self.views.spec.vb.width() - 2, 2)  # the box's top right (px)

    # --- switching -------------------------------------------------------------------------------
    def set_shown(self, name: str, on: bool) -> None:
        self.shown[name] = bool(on)
        self.redraw()

    @property
    def any_shown(self) -> bool:
        return any(self.shown.values())

    # --- computing -------------------------------------------------------------------------------
    def tracks_of(self, audio):
        """(tracks or None, error) of ``audio``, or None while they are computed."""
        got = self._tracks.get(id(audio))
        if got is not None and got[0] is audio:
            return got[1], got[2]
        if id(audio) not in self._pending:
            self._pending.add(id(audio))
            fut = self._pool.submit(audio_tracks, audio)
            fut.add_done_callback(lambda f, a=audio: self._finished(a, f))
        return None

    def _finished(self, audio, fut) -> None:  # in the worker thread
        exc = fut.exception()
        try:
            self.arrived.emit((audio, None if exc else fut.result(), str(exc) if exc else ""))
        except RuntimeError:  # the window is gone
            pass

    def _store(self, item) -> None:  # in the GUI thread
        audio, tracks, error = item
        self._pending.discard(id(audio))
        open_audio = {id(e.utterance.audio) for e in self.doc.files.entries}
        self._tracks = {k: v for k, v in self._tracks.items() if k in open_audio}
        self._tracks[id(audio)] = (audio, tracks, error)
        u = self.doc.utterance
        if u is not None and u.audio is audio:
            if error:
                self.doc.nav.message_(f"Acoustics: no tracks ({error})")
            elif tracks is not None:
                note = tracks.undefined_measures()
                if note:
                    self.doc.nav.message_(f"Acoustics: undefined throughout: {', '.join(note)} "
                                      "(silence, noise or music?)")
        self.redraw()

    # --- drawing ---------------------------------------------------------------------------------
    def current(self):
        """The shown file's tracks, or None (nothing open, off, still computing, or failed)."""
        u = self.doc.utterance
        if u is None or not self.any_shown:
            return None
        got = self.tracks_of(u.audio)
        return None if got is None else got[0]

    def redraw(self) -> None:
        tracks = self.current()
        u = self.doc.utterance
        spec = None if u is None else self.views.spectrograms.get(u.audio, self.doc.attention.spectrogram)
        show = {n: on and tracks is not None for n, on in self.shown.items()}
        if show["formants"] and spec is not None:
            xs, ys = [], []
            for k in (1, 2, 3):
                tr = tracks[f"f{k}"]
                ok = np.isfinite(tr.values)
                xs.append(tr.times[ok])
                ys.append(np.array([spec.y_of_hz(f) for f in tr.values[ok]]))
            self.formants.setData(np.concatenate(xs), np.concatenate(ys))
        else:
            self.formants.setData([], [])
        if show["pitch"]:
            self.pitch_curve.setData(tracks["f0"].times, tracks["f0"].values)
        else:
            self.pitch_curve.setData([], [])
        if show["intensity"]:
            self.intensity_curve.setData(tracks["intensity"].times, tracks["intensity"].values)
        else:
            self.intensity_curve.setData([], [])
        self.views.spec.showAxis("right", show["pitch"])
        self._fit_boxes()
        self._on_hover()

    def values_at(self, t: float) -> str:
        """What the hover shows at ``t`` seconds ("" when no track is shown)."""
        tracks = self.current()
        if tracks is None:
            return ""
        v = {m: float(a[0]) for m, a in sample_tracks(tracks, np.array([t])).items()}

        def hz(x: float) -> str:
            return f"{x:.0f}" if np.isfinite(x) else "--"

        parts = []
        if self.shown["pitch"]:
            parts.append(f"F0 {hz(v['f0'])} Hz")
        if self.shown["formants"]:
            parts.append(f"F1 {hz(v['f1'])} F2 {hz(v['f2'])} F3 {hz(v['f3'])} Hz")
        if self.shown["intensity"]:
            parts.append(f"{v['intensity']:.1f} dB" if np.isfinite(v["intensity"]) else "-- dB")
        return "  ".join(parts)

    def _on_hover(self) -> None:
        h = self.doc.nav.hover
        text = self.values_at(h[0]) if h is not None else ""
        self.hover_text.setText(text)
        self.hover_text.setVisible(bool(text))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
