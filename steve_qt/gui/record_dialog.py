"""File > Record...: a small dialog with a level meter, the elapsed time, Stop and Cancel."""

from __future__ import annotations

import numpy as np
from PyQt6 import QtCore, QtWidgets

from ..core.speech.recording import Recorder

METER_INTERVAL_MS = 50  # how often the meter and the clock are redrawn
METER_STEPS = 100  # the level meter's resolution (peak 0..1 -> 0..METER_STEPS)


def clock(seconds: float) -> str:
    """``m:ss.s``"""
    m, s = divmod(max(seconds, 0.0), 60.0)
    return f"{int(m)}:{s:04.1f}"


class QtRecordDialog(QtWidgets.QDialog):
    """Shows a running Recorder; Stop keeps the take, Cancel drops it."""

    def __init__(self, recorder: Recorder, parent=None):
        super().__init__(parent)
        self.recorder = recorder
        self.take: np.ndarray | None = None
        self.setWindowTitle("Record")
        self.meter = QtWidgets.QProgressBar()
        self.meter.setRange(0, METER_STEPS)
        self.meter.setTextVisible(False)
        self.meter.setToolTip("input level: the loudest sample of the latest block")
        self.elapsed = QtWidgets.QLabel(clock(0.0))
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.setDefault(True)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.stop_button.clicked.connect(self.accept)
        self.cancel_button.clicked.connect(self.reject)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("level"))
        row.addWidget(self.meter, 1)
        row.addWidget(self.elapsed)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.stop_button)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(QtWidgets.QLabel("Recording from the default input device"))
        lay.addLayout(row)
        lay.addLayout(buttons)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(METER_INTERVAL_MS)
        self.timer.timeout.connect(self._on_tick)
        self.timer.start()

    def _on_tick(self) -> None:
        self.meter.setValue(int(round(min(self.recorder.level(), 1.0) * METER_STEPS)))
        self.elapsed.setText(clock(self.recorder.elapsed()))
        if self.recorder.full():
            self.accept()

    def done(self, result: int) -> None:
        self.timer.stop()
        take = self.recorder.stop()
        self.take = take if result == QtWidgets.QDialog.DialogCode.Accepted else None
        super().done(result)
