"""The toolbar: model, component, layer, head, mean of heads, weights/scores, scale, colormap,
window. Each control sets a document field and follows the document's event for that field."""

from __future__ import annotations

from PyQt6 import QtCore, QtWidgets

from ..core.models.adapters import available_adapters
from ..core.attention.maps import COMPONENT_TITLES
from ..core.state.document import Document
from ..core.frames import window_name
from ..core.attention.measures import PER_LAYER
from . import dialogs
from .colors import COLORMAPS

Qt = QtCore.Qt
OTHER_MODEL = "__other__"
MODEL_TITLES = {"whisper": "Whisper tiny.en (embedded)"}
SCALE_TITLES = {"global": "global", "row": "per row", "log": "log"}
KIND_TITLES = {"weights": "weights", "scores": "scores", "norm": "norm",
               "value_zeroing": "value zeroing", "grad": "grad relevance"}
TIPS = {
    "kind": "weights: softmax attention probabilities; scores: pre-softmax logits q\u00b7k/\u221ad; "
            "context mixing of the encoder, computed when first chosen: norm: \u2016\u03b1\u00b7"
            "f(x)\u2016 per head (Kobayashi et al. 2020); value zeroing: per layer, how much the "
            "layer's output at a query changes when a key's value is zeroed (Mohebbi et al. "
            "2023); grad relevance: gradient-weighted attention of the transcript, through "
            "layers 0 to this one (Chefer et al. 2021)",
    "scale": "global: one colour scale for the map; per row: each query row scaled to its "
             "maximum; log: log10 of the weights",
}


def _label(text: str) -> QtWidgets.QLabel:
    lab = QtWidgets.QLabel(text)
    lab.setContentsMargins(8, 0, 3, 0)
    return lab


class QtControls(QtWidgets.QToolBar):
    modelChosen = QtCore.pyqtSignal(str)  # a model spec, or OTHER_MODEL / "name:?" to ask

    def __init__(self, doc: Document, parent=None):
        super().__init__("Attention", parent)
        self.doc = doc
        self.setObjectName("attention-controls")
        self.setMovable(False)

        self.model = QtWidgets.QComboBox()
        self.component = QtWidgets.QComboBox()
        self.layer = QtWidgets.QSpinBox()
        self.head = QtWidgets.QSpinBox()
        self.mean = QtWidgets.QCheckBox("mean of heads")
        self.rollout = QtWidgets.QCheckBox("rollout")
        self.rollout.setToolTip("Attention rollout (Abnar & Zuidema 2020): heads averaged, "
                                "identity added, rows renormalised, multiplied through all "
                                "layers; self-attention only")
        self.kind = QtWidgets.QComboBox()
        self.scale = QtWidgets.QComboBox()
        self.cmap = QtWidgets.QComboBox()
        self.window = QtWidgets.QSpinBox()
        for w in (self.model, self.component, self.layer, self.rollout, self.head, self.mean,
                  self.kind, self.scale, self.cmap, self.window):
            w.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        for combo in (self.model, self.component, self.kind, self.scale, self.cmap):
            combo.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.model.setMinimumContentsLength(0)
        self.kind.setToolTip(TIPS["kind"])
        self.scale.setToolTip(TIPS["scale"])
        self.layer.setToolTip("Layer, from 0 (PgUp / PgDn)")
        self.head.setToolTip("Head, from 0 ([ / ])")
        self.window.setToolTip("Whisper reads 30 s at a time: which 30 s window to show (from 0)")
        self.window.setPrefix("window ")
        for k, t in KIND_TITLES.items():
            self.kind.addItem(t, k)
        for k, t in SCALE_TITLES.items():
            self.scale.addItem(t, k)
        for name in COLORMAPS:
            self.cmap.addItem(name, name)

        self.window_action = None
        for text, w in (("Model", self.model), ("Attention", self.component),
                        ("Layer", self.layer), (None, self.rollout), ("Head", self.head),
                        (None, self.mean),
                        ("Values", self.kind), ("Scale", self.scale), ("Colours", self.cmap),
                        (None, self.window)):
            if text:
                self.addWidget(_label(text))
            act = self.addWidget(w)
            if w is self.window:
                self.window_action = act

        self._fill_models()
        self.model.activated.connect(self._on_model_activated)
        self.component.activated.connect(
            lambda i: doc.attention.set_component(self.component.itemData(i)))
        self.layer.valueChanged.connect(lambda v: doc.attention.set_layer(v))
        self.head.valueChanged.connect(lambda v: None if self.mean.isChecked() else doc.attention.set_head(v))
        self.mean.toggled.connect(self._on_mean_toggled)
        self.rollout.toggled.connect(doc.attention.set_rollout)
        self.kind.activated.connect(self._on_kind_activated)
        self.scale.activated.connect(lambda i: doc.attention.set_scale(self.scale.itemData(i)))
        self.cmap.activated.connect(lambda i: doc.attention.set_colormap(self.cmap.itemData(i)))
        self.window.valueChanged.connect(doc.attention.set_window)

        e = doc.events
        e.extraction.connect(self._on_extraction_change)
        e.current.connect(self._on_extraction_change)
        e.component.connect(self._on_component_change)
        e.layer.connect(self._on_layer_change)
        e.head.connect(self._on_head_change)
        e.rollout.connect(self._on_rollout_change)
        e.kind.connect(self._on_kind_change)
        e.scale.connect(lambda ev: self._select(self.scale, doc.attention.scale))
        e.colormap.connect(lambda ev: self._select(self.cmap, doc.attention.colormap))
        e.model.connect(lambda ev: self._select_model(doc.attention.model))
        e.window.connect(self._on_extraction_change)
        self._on_extraction_change(None)

    # --- models ----------------------------------------------------------------------------------
    def _fill_models(self) -> None:
        self.model.clear()
        for name in sorted(available_adapters(), key=lambda n: (n != "whisper", n)):
            if name == "whisper":
                self.model.addItem(MODEL_TITLES["whisper"], "whisper")
            else:
                self.model.addItem(f"{name} (choose...)", f"{name}:?")
        self.model.addItem("Other model...", OTHER_MODEL)
        self._select_model(self.doc.attention.model)

    def _select_model(self, spec: str) -> None:
        i = self.model.findData(spec)
        if i < 0:
            self.model.insertItem(self.model.count() - 1, spec, spec)
            i = self.model.findData(spec)
        self.model.blockSignals(True)
        self.model.setCurrentIndex(i)
        self.model.blockSignals(False)

    def _on_model_activated(self, i: int) -> None:
        spec = self.model.itemData(i)
        self._select_model(self.doc.attention.model)  # stays until the window has a real spec
        self.modelChosen.emit(spec)
        self.choose_model(spec)

    def choose_model(self, spec: str) -> None:
        """Set the document's model; "Other model..." and "name (choose...)" ask first."""
        if spec == OTHER_MODEL:
            spec = dialogs.ask_model_spec(self.window(), self.doc.attention.model)
        elif spec.endswith(":?"):
            folder = dialogs.ask_folder(self.window(), f"{spec[:-2]} model folder")
            spec = f"{spec[:-2]}:{folder}" if folder else None
        if spec:
            self.doc.attention.set_model(spec)

    # --- document -> controls --------------------------------------------------------------------
    @staticmethod
    def _select(combo: QtWidgets.QComboBox, value) -> None:
        i = combo.findData(value)
        if i >= 0:
            combo.blockSignals(True)
            combo.setCurrentIndex(i)
            combo.blockSignals(False)

    @staticmethod
    def _set_spin(spin: QtWidgets.QSpinBox, value: int, lo: int, hi: int) -> None:
        spin.blockSignals(True)
        spin.setRange(lo, hi)
        spin.setValue(value)
        spin.blockSignals(False)

    def _on_extraction_change(self, event) -> None:
        doc = self.doc
        self.component.blockSignals(True)
        self.component.clear()
        for c in doc.attention.components():
            self.component.addItem(COMPONENT_TITLES[c], c)
        self.component.blockSignals(False)
        has = doc.attention.maps is not None
        for w in (self.component, self.layer, self.head, self.mean, self.kind, self.scale):
            w.setEnabled(has)
        n = doc.attention.num_windows()
        self._set_spin(self.window, doc.attention.window, 0, max(n, 1) - 1)
        self.window.setSuffix(window_name(doc.attention.window, n).removeprefix(f"window {doc.attention.window}"))
        self.window_action.setVisible(n > 1)
        self._on_component_change(None)

    def _on_component_change(self, event) -> None:
        self._select(self.component, self.doc.attention.component)
        self._on_layer_change(None)
        self._on_head_change(None)
        self._on_rollout_change(None)

    def _on_rollout_change(self, event) -> None:
        doc = self.doc
        self.rollout.blockSignals(True)
        self.rollout.setChecked(doc.attention.rollout)
        self.rollout.blockSignals(False)
        self.rollout.setEnabled(doc.attention.can_rollout())
        self.layer.setEnabled(doc.attention.maps is not None and not doc.attention.rollout)

    def _on_layer_change(self, event) -> None:
        m = self.doc.attention.maps
        self._set_spin(self.layer, self.doc.attention.layer, 0, m.num_layers - 1 if m else 0)

    def _on_head_change(self, event) -> None:
        m = self.doc.attention.maps
        head = self.doc.attention.head
        self._set_spin(self.head, head if head is not None else 0, 0, m.num_heads - 1 if m else 0)
        per_layer = self.doc.attention.kind in PER_LAYER  # one map per layer: no head to choose
        self.head.setEnabled(m is not None and head is not None and not per_layer)
        self.mean.setEnabled(m is not None and not per_layer)
        self.mean.blockSignals(True)
        self.mean.setChecked(head is None)
        self.mean.blockSignals(False)

    def _on_kind_change(self, event) -> None:
        self._select(self.kind, self.doc.attention.kind)
        self._on_head_change(None)

    def _on_kind_activated(self, i: int) -> None:
        """Ask the document for the kind; the box then shows what the document holds (a refused
        kind, or one computed first, leaves the map's kind in the box)."""
        self.doc.attention.set_kind(self.kind.itemData(i))
        self._select(self.kind, self.doc.attention.kind)

    def _on_mean_toggled(self, checked: bool) -> None:
        self.doc.attention.set_head(None if checked else self.head.value())
