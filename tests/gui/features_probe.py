"""Run in a subprocess by test_gui_features.py, with HOME pointing at an ALSA file device.

``features_probe.py feature WAV FEATURE FLOOR_DB``: opens WAV, stores synthetic activations
(feature_helpers.synthetic_acts, seed 0) at the site, presses F (Play Feature).
``features_probe.py examples WAV FEATURE PAD_MS IDX``: also opens the index IDX and runs Play
Examples. Waits for the stream to end and prints JSON: what was played and what followed along.
"""

import json
import os
import sys
import time

os.environ["QT_QPA_PLATFORM"] = "offscreen"
sys.path.insert(0, os.path.dirname(__file__))


def main(mode: str, wav: str, feature: int, value: float, idx: str | None) -> None:
    from steve_qt.gui.app import make_app

    app = make_app()
    from PyQt6 import QtCore
    from PyQt6.QtTest import QTest

    from feature_helpers import SITE, synthetic_acts
    from steve_qt.core.frames import whisper_grid
    from steve_qt.gui.main_window import QtMainWindow

    win = QtMainWindow(auto_extract=False)
    win.resize(1200, 800)
    win.show()
    app.processEvents()
    i = win.opener.open_audio(wav)
    fv = win.doc.features
    fv.set_site(SITE)
    fv.store(i, win.doc.attention.model, 0, SITE, synthetic_acts(win.doc.utterance.audio.samples.size, 0),
             whisper_grid(0))
    fv.set_feature(feature)
    rows = []
    fv.events.example.connect(lambda e: rows.append(e.value))
    if mode == "feature":
        win.features.panel.floor.setValue(int(value))
        QTest.keyClick(win, QtCore.Qt.Key.Key_F)
    else:
        win.features.panel.pad.setValue(int(value))
        win.features.open_index(idx)
        fv.set_feature(feature)
        win.features.listening.play_examples()
    started = win.playback.timer.isActive()
    playing_message = win.status_bar.message_label.text()
    t0 = time.time()
    while win.playback.timer.isActive() and time.time() - t0 < 60:
        app.processEvents()
        time.sleep(0.005)
    print(json.dumps({
        "started": started,
        "frames_written": win.playback.player.frames_written,
        "message": playing_message,  # while it plays (the status bar clears when it ends)
        "message_after": win.status_bar.message_label.text(),
        "examples": [[str(e.file), e.time_s] for e in fv.examples],
        "rows_followed": [r for r in rows if r is not None],
    }))
    win.close()


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], a[1], int(a[2]), float(a[3]), a[4] if len(a) > 4 else None)
