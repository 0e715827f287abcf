"""The Experiments dock: +-k attention window, span removal, steering, logit lens, LM.

``QtExperimentsPanel`` subscribes to the document (current utterance, selection) and to its own
evented model ``steve_qt.core.state.experiments.Experiments``; experiments run as tasks in the
window's extraction queue (one model user at a time; the status bar's Cancel stops them); their
results come back to the GUI thread and are set on the model, which redraws the tabs. Errors go
to the status bar as one line.

The k slider's masked run is a full extraction inside the attention window, so the attention
view shows the masked maps (their title says "attention +-k frames"); the slider's "off" stop
puts the unmasked extraction back.
"""

from __future__ import annotations

import html
from typing import Callable

from PyQt6 import QtCore, QtWidgets
from PyQt6.QtCore import Qt

from ..core.state.experiments import (K_STOPS, Experiments, lens_task, lm_task, span_task,
                                steer_task, window_task)
from ..core.interventions.tables import layers_label, parse_layers
from ..core.errors import SteveError
from ..core.speech.textdiff import DELETE, EQUAL, INSERT
from .worker import Job

DEFAULT_SITE = "encoder.blocks.2.mlp.1"
K_LABEL_PX = 150  # the window slider's label ("k: off (no window)")
BROWSE_PX = 32  # the "..." button beside a path


def diff_html(ops) -> str:
    """Word diff as HTML: inserted words green and underlined, deleted red and struck through,
    substituted: the old word struck through, then the new one on orange."""
    parts = []
    for op, r, h in ops:
        r, h = html.escape(r or ""), html.escape(h or "")
        if op == EQUAL:
            parts.append(r)
        elif op == DELETE:
            parts.append(f'<s style="color:#c62828" title="deleted">{r}</s>')
        elif op == INSERT:
            parts.append(f'<u style="color:#2e7d32" title="inserted"><b>{h}</b></u>')
        else:
            parts.append(f'<s style="color:#8d6e63">{r}</s>&nbsp;<span style="background:#ffcc80"'
                         f' title="substituted for {r}"><b>{h}</b></span>')
    return " ".join(parts) or "<i>(no words)</i>"


LEGEND = ('<span style="color:#666">legend: <u style="color:#2e7d32"><b>inserted</b></u> '
          '<s style="color:#c62828">deleted</s> <s style="color:#8d6e63">old</s>&nbsp;'
          '<span style="background:#ffcc80"><b>substituted</b></span></span>')


def _label() -> QtWidgets.QLabel:
    lab = QtWidgets.QLabel("")
    lab.setWordWrap(True)
    lab.setTextFormat(Qt.TextFormat.RichText)
    lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return lab


def _table(headers) -> QtWidgets.QTableWidget:
    t = QtWidgets.QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(list(headers))
    t.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
    t.verticalHeader().setVisible(False)
    t.horizontalHeader().setStretchLastSection(True)
    return t


def _fill(table: QtWidgets.QTableWidget, rows) -> None:
    table.setRowCount(len(rows))
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            table.setItem(i, j, QtWidgets.QTableWidgetItem(str(value)))
    table.resizeColumnsToContents()


def _wer(x: float) -> str:
    return "inf" if x == float("inf") else f"{x:.2f}"


class QtExperimentsPanel(QtWidgets.QTabWidget):
    """Tabs: Window +-k, Span, Steer, Lens, LM. Tasks run in the extraction controller's queue
    (``extraction.submit``); their state is the ``Experiments`` model's."""

    def __init__(self, doc, model: Experiments, extraction, parent=None):
        super().__init__(parent)
        self.doc, self.model, self.extraction = doc, model, extraction
        self._unmasked: dict[int, tuple] = {}  # id(entry) -> (key, unmasked Extraction)
        for make, title in ((self._window_tab, "Window \u00b1k"), (self._span_tab, "Span"),
                            (self._steer_tab, "Steer"), (self._lens_tab, "Lens"),
                            (self._lm_tab, "LM")):
            self.addTab(_scrolled(make()), title)
        e = model.events
        e.k.connect(self._show_k)
        e.window_result.connect(self._on_window_result)
        e.span_result.connect(self._on_span_result)
        e.steer_result.connect(self._on_steer_result)
        e.lens_result.connect(self._on_lens_result)
        e.lm_result.connect(self._on_lm_result)
        doc.events.current.connect(self._on_current_change)
        doc.events.selection.connect(self._on_selection_change)
        self._on_selection_change(None)

    # --- shared ---------------------------------------------------------------------------------
    def _context(self):
        """(samples, window, reference Transcript or None); SteveError without an utterance."""
        u = self.doc.utterance
        if u is None:
            raise SteveError("open an audio file first")
        ex = self.doc.attention.extraction
        if ex is not None and ex.meta.get("attention_window"):
            saved = self._unmasked.get(id(self.doc.files.entry))
            ex = saved[1] if saved else None
        ref = ex.transcript if ex is not None and ex.transcript.text else None
        return u.audio.samples, self.doc.attention.window, ref

    def submit(self, title: str, task, on_done: Callable) -> None:
        """Run ``task`` on the shown utterance in the worker; ``on_done(result)`` on the GUI
        thread; the model's ``running`` and ``error`` say where it is."""
        doc = self.doc
        entry = doc.files.entry
        if entry is None:
            doc.nav.message_(f"{title}: open an audio file first")
            return

        def done(result) -> None:
            self.model.set("running", None)
            on_done(result)
            doc.nav.message_(f"{title}: done")

        def failed(reason: str) -> None:
            self.model.set("running", None)
            self.model.set("error", reason)
            doc.nav.message_(f"{title}: {reason.splitlines()[0] if reason else 'failed'}")

        self.model.set("running", title)
        self.extraction.submit(Job(entry, doc.attention.model, doc.attention.window, task=task,
                                   on_done=done, on_error=failed, title=title), front=True)

    def _run(self, title: str, make_task: Callable, on_done: Callable) -> bool:
        try:
            task = make_task()
        except SteveError as exc:
            self.doc.nav.message_(f"{title}: {exc}")
            return False
        self.submit(title, task, on_done)
        return True

    # --- window +-k -------------------------------------------------------------------------------
    def _window_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(w)
        row = QtWidgets.QHBoxLayout()
        self.k_slider = QtWidgets.QSlider(Qt.Orientation.Horizontal)
        self.k_slider.setRange(0, len(K_STOPS) - 1)
        self.k_slider.setValue(len(K_STOPS) - 1)
        self.k_slider.setTickPosition(QtWidgets.QSlider.TickPosition.TicksBelow)
        self.k_slider.setPageStep(1)
        self.k_slider.setTracking(False)  # one run when the slider is let go
        self.k_slider.valueChanged.connect(self._on_k_slider)
        self.k_label = QtWidgets.QLabel("k: off")
        self.k_label.setMinimumWidth(K_LABEL_PX)
        row.addWidget(QtWidgets.QLabel("attention window"))
        row.addWidget(self.k_slider, 1)
        row.addWidget(self.k_label)
        lay.addLayout(row)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("encoder layers"))
        self.k_layers = QtWidgets.QLineEdit("all")
        self.k_layers.setToolTip("layers to mask, 0-based, e.g. 0,1 (all: every layer)")
        row.addWidget(self.k_layers, 1)
        lay.addLayout(row)
        self.k_result = _label()
        lay.addWidget(self.k_result)
        lay.addWidget(_label_text(LEGEND))
        lay.addStretch(1)
        return w

    def set_k(self, k: int | None) -> None:
        """Move the slider to ``k`` (one of K_STOPS) and run it."""
        self.k_slider.setValue(K_STOPS.index(k))

    def _show_k(self, event=None) -> None:
        """Slider and label show the model's k (after a change, or a refused choice)."""
        k = self.model.k
        with QtCore.QSignalBlocker(self.k_slider):
            self.k_slider.setValue(K_STOPS.index(k))
        self.k_label.setText("k: off (no window)" if k is None
                             else f"k = {k} frames (\u00b1{k * 20} ms)")

    def _on_k_slider(self, index: int) -> None:
        k = K_STOPS[index]
        if k is None:
            self.model.set_k(None)
            self._restore_unmasked()
            self.k_result.setText("")
            return
        try:
            layers = parse_layers(self.k_layers.text())
        except SteveError as exc:
            self.doc.nav.message_(f"attention window: {exc}")
            self._show_k()  # refused: the slider goes back to what the model holds
            return
        self.model.set_k(k)
        self._run(f"attention \u00b1{k}", lambda: self._window_task(k, layers),
                  lambda r: self.model.set("window_result", r))

    def _window_task(self, k, layers):
        samples, window, ref = self._context()
        return window_task(samples, k, layers, window, _text(ref))

    def _on_window_result(self, event) -> None:
        r = event.value
        if r is None:
            self.k_result.setText("")
            return
        if r.k != self.model.k:
            return  # the slider moved on
        self.k_result.setText(
            f"<b>k = {r.k}</b> (layers {layers_label(r.layers)}), WER {_wer(r.result.wer)} "
            f"against the unmasked transcript:<br>{diff_html(r.result.ops)}"
            "<br><span style='color:#666'>the attention view shows the masked maps</span>")
        if r.extraction is not None:
            self._show_masked(r.extraction)

    def _show_masked(self, ex) -> None:
        i, entry = self.doc.files.current, self.doc.files.entry
        if i is None:
            return
        key = self.doc.attention.job_key()
        shown = self.doc.attention.extraction
        if shown is not None and not shown.meta.get("attention_window"):
            self._unmasked[id(entry)] = (key, shown)
        self.doc.set_extraction(i, *key, ex)

    def _restore_unmasked(self) -> None:
        i, entry = self.doc.files.current, self.doc.files.entry
        saved = self._unmasked.pop(id(entry), None) if entry is not None else None
        if saved is not None:
            self.doc.set_extraction(i, *saved[0], saved[1])

    # --- span removal -----------------------------------------------------------------------------
    def _span_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(w)
        row = QtWidgets.QHBoxLayout()
        self.span_label = QtWidgets.QLabel("")
        row.addWidget(self.span_label, 1)
        row.addWidget(QtWidgets.QLabel("fill with"))
        self.span_fill = QtWidgets.QComboBox()
        self.span_fill.addItems(["padding", "silence"])
        row.addWidget(self.span_fill)
        lay.addLayout(row)
        self.span_button = QtWidgets.QPushButton("Transcribe without this span")
        self.span_button.clicked.connect(self.remove_selection)
        lay.addWidget(self.span_button)
        self.span_table = _table(["variant", "WER", "transcript"])
        lay.addWidget(self.span_table, 1)
        self.span_diff = _label()
        lay.addWidget(self.span_diff)
        return w

    def _on_selection_change(self, event) -> None:
        sel = self.doc.nav.selection
        self.span_label.setText("select a span in the views (drag)" if sel is None
                                else f"selection {sel[0]:.3f}\u2013{sel[1]:.3f} s")
        self.span_button.setEnabled(sel is not None)
        self.steer_span.setText("selection only" if sel is None
                                else f"selection only ({sel[0]:.2f}\u2013{sel[1]:.2f} s)")

    def remove_selection(self) -> None:
        sel = self.doc.nav.selection
        if sel is None:
            self.doc.nav.message_("span removal: select a span first")
            return
        fill = self.span_fill.currentText()

        def make():
            samples, window, ref = self._context()
            return span_task(samples, sel[0], sel[1], fill, window, _text(ref))
        self._run(f"without {sel[0]:.2f}\u2013{sel[1]:.2f} s", make,
                  lambda r: self.model.set("span_result", r))

    def _on_span_result(self, event) -> None:
        rows = event.value or []
        _fill(self.span_table, [(v.variant, _wer(v.wer), v.transcript) for v in rows])
        self.span_diff.setText(f"{diff_html(rows[-1].ops)}<br>{LEGEND}" if rows else "")

    # --- steering --------------------------------------------------------------------------------
    def _steer_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        form = QtWidgets.QFormLayout(w)
        self.steer_site = QtWidgets.QComboBox()
        self.steer_site.setEditable(True)
        self.steer_site.addItems([DEFAULT_SITE] + [f"encoder.blocks.{l}{s}" for l in range(4)
                                                   for s in ("", ".mlp.1")
                                                   if f"encoder.blocks.{l}{s}" != DEFAULT_SITE])
        self.steer_site.setToolTip("module path (a site); with an SAE: the SAE's site")
        form.addRow("site", self.steer_site)
        self.steer_feature = QtWidgets.QSpinBox()
        self.steer_feature.setRange(0, 1_000_000)
        self.steer_feature.setValue(17)
        form.addRow("neuron / feature", self.steer_feature)
        self.steer_scale = QtWidgets.QDoubleSpinBox()
        self.steer_scale.setRange(-1000.0, 1000.0)
        self.steer_scale.setDecimals(2)
        self.steer_scale.setValue(0.0)
        form.addRow("scale", self.steer_scale)
        self.steer_span = QtWidgets.QCheckBox("selection only")
        form.addRow("", self.steer_span)
        row = QtWidgets.QHBoxLayout()
        self.steer_sae = QtWidgets.QLineEdit()
        self.steer_sae.setPlaceholderText("optional: SAE folder (cfg.json + weights)")
        browse = QtWidgets.QPushButton("...")
        browse.setMaximumWidth(BROWSE_PX)
        browse.clicked.connect(self._browse_sae)
        row.addWidget(self.steer_sae, 1)
        row.addWidget(browse)
        form.addRow("SAE", row)
        run = QtWidgets.QPushButton("Steer and transcribe")
        run.clicked.connect(self.run_steer)
        form.addRow(run)
        self.steer_table = _table(["variant", "WER", "transcript"])
        form.addRow(self.steer_table)
        self.steer_diff = _label()
        form.addRow(self.steer_diff)
        return w

    def _browse_sae(self) -> None:
        from . import dialogs

        d = dialogs.ask_folder(self, "SAE folder")
        if d:
            self.steer_sae.setText(str(d))

    def run_steer(self) -> None:
        site = self.steer_site.currentText().strip()
        feature, scale = self.steer_feature.value(), self.steer_scale.value()
        sae = self.steer_sae.text().strip() or None
        span = self.doc.nav.selection if self.steer_span.isChecked() else None
        if self.steer_span.isChecked() and span is None:
            self.doc.nav.message_("steering: select a span first (or untick 'selection only')")
            return

        def make():
            samples, window, ref = self._context()
            return steer_task(samples, site, feature, scale, span, sae, window, _text(ref))
        self._run(f"steer {site}[{feature}] \u00d7 {scale:g}", make,
                  lambda r: self.model.set("steer_result", r))

    def _on_steer_result(self, event) -> None:
        rows = event.value or []
        _fill(self.steer_table, [(v.variant, _wer(v.wer), v.transcript) for v in rows])
        self.steer_diff.setText(f"steered: {diff_html(rows[-1].ops)}<br>{LEGEND}" if rows else "")

    # --- logit lens ------------------------------------------------------------------------------
    def _lens_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(w)
        run = QtWidgets.QPushButton("Run the logit lens")
        run.clicked.connect(self.run_lens)
        lay.addWidget(run)
        lay.addWidget(_label_text("encoder: block l's output through ln_post, decoded"))
        self.lens_encoder = _table(["layer", "WER", "transcript"])
        lay.addWidget(self.lens_encoder, 1)
        lay.addWidget(_label_text("decoder: top next token per layer (rows) and position "
                                  "(columns: the input token); hover for the top 5"))
        self.lens_decoder = QtWidgets.QTableWidget(0, 0)
        self.lens_decoder.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        lay.addWidget(self.lens_decoder, 2)
        return w

    def run_lens(self) -> None:
        def make():
            samples, window, ref = self._context()
            return lens_task(samples, window, ref)
        self._run("logit lens", make, lambda r: self.model.set("lens_result", r))

    def _on_lens_result(self, event) -> None:
        r = event.value
        if r is None:
            _fill(self.lens_encoder, [])
            self.lens_decoder.setRowCount(0)
            return
        _fill(self.lens_encoder, [(l, _wer(v.wer), v.transcript) for l, v in r.encoder])
        t = r.decoder
        n_layers, n_pos = t.top_probs.shape[:2]
        tab = self.lens_decoder
        tab.setRowCount(n_layers)
        tab.setColumnCount(n_pos)
        tab.setHorizontalHeaderLabels([repr(s)[1:-1] for s in t.token_texts])
        tab.setVerticalHeaderLabels([f"layer {l}" for l in range(n_layers)])
        for l in range(n_layers):
            for p in range(n_pos):
                texts, probs = t.top_texts[l][p], t.top_probs[l, p]
                item = QtWidgets.QTableWidgetItem(f"{texts[0]!r} {probs[0]:.2f}")
                item.setToolTip("\n".join(f"{s!r}  {q:.3f}" for s, q in zip(texts, probs)))
                tab.setItem(l, p, item)
        tab.resizeColumnsToContents()

    # --- the decoder as a language model ---------------------------------------------------------
    def _lm_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        form = QtWidgets.QFormLayout(w)
        self.lm_prompt = QtWidgets.QLineEdit(" rug")
        self.lm_prompt.setToolTip("text after the start sequence; the encoder sees padding only")
        form.addRow("prompt", self.lm_prompt)
        self.lm_word = QtWidgets.QLineEdit("")
        self.lm_word.setPlaceholderText("optional: nearest tokens of a word (cosine)")
        form.addRow("neighbours of", self.lm_word)
        self.lm_top = QtWidgets.QSpinBox()
        self.lm_top.setRange(1, 200)
        self.lm_top.setValue(20)
        form.addRow("top", self.lm_top)
        run = QtWidgets.QPushButton("Next tokens")
        run.clicked.connect(self.run_lm)
        self.lm_prompt.returnPressed.connect(self.run_lm)
        form.addRow(run)
        self.lm_table = _table(["kind", "rank", "token", "logit / cosine", "prob"])
        form.addRow(self.lm_table)
        return w

    def run_lm(self) -> None:
        prompt, word, top = self.lm_prompt.text(), self.lm_word.text(), self.lm_top.value()
        if not prompt and not word.strip():
            self.doc.nav.message_("LM: the prompt is empty: type some text, e.g. ' rug'")
            return
        self._run("decoder LM", lambda: lm_task(prompt, word, top),
                  lambda r: self.model.set("lm_result", r))

    def _on_lm_result(self, event) -> None:
        r = event.value
        rows = []
        if r is not None and r.next_tokens is not None:
            nt = r.next_tokens
            rows += [("next", i, repr(t), f"{lg:.3f}", f"{p:.4f}")
                     for i, (t, lg, p) in enumerate(zip(nt.texts, nt.logits, nt.probs))]
        if r is not None:
            rows += [("neighbour", i, repr(t), f"{c:.3f}", "")
                     for i, (_, t, c) in enumerate(r.neighbours)]
        _fill(self.lm_table, rows)

    # --- document --------------------------------------------------------------------------------
    def _on_current_change(self, event) -> None:
        for i, e in enumerate(self.doc.files.entries):  # masked maps never outlive the slider
            saved = self._unmasked.pop(id(e), None)
            if saved is not None:
                self.doc.set_extraction(i, *saved[0], saved[1])
        self._unmasked.clear()
        self.model.clear()
        self.model.set_k(None)
        self._show_k()


def _scrolled(tab: QtWidgets.QWidget) -> QtWidgets.QScrollArea:
    """A tab's controls in a scroll area: a short dock scrolls them instead of growing the
    window's minimum height."""
    area = QtWidgets.QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
    area.setWidget(tab)
    return area


def _label_text(text: str) -> QtWidgets.QLabel:
    lab = _label()
    lab.setText(text)
    return lab


def _text(transcript) -> str | None:
    return transcript.text if transcript is not None else None
