"""Run in a subprocess by test_gui_playback.py, with HOME pointing at an ALSA file device.

Opens a WAV in the window, clicks a vowel in the phone tier (which selects and plays it), waits
for the stream to finish and prints JSON: the selection, the file's rate, what the player wrote.
"""

import json
import os
import sys
import time

os.environ["QT_QPA_PLATFORM"] = "offscreen"


def main(wav: str, nth_vowel: int) -> None:
    from steve_qt.gui.app import make_app

    app = make_app()
    from PyQt6 import QtCore
    from PyQt6.QtTest import QTest

    from steve_qt.core.speech.phones import phone_class
    from steve_qt.gui.main_window import QtMainWindow

    win = QtMainWindow(auto_extract=False)
    win.resize(1200, 800)
    win.show()
    app.processEvents()
    win.opener.open_audio(wav)
    app.processEvents()
    phones = win.doc.alignment.phones
    vowels = [iv for iv in phones.intervals if phone_class(iv.label).kind == "vowel"]
    iv = vowels[nth_vowel]
    views = win.views
    scene = views.phones.vb.mapViewToScene(QtCore.QPointF((iv.start_s + iv.end_s) / 2, 0.5))
    QTest.mouseClick(views.viewport(), QtCore.Qt.MouseButton.LeftButton,
                     QtCore.Qt.KeyboardModifier.NoModifier, views.mapFromScene(scene))
    heads = []
    win.doc.events.playhead.connect(lambda e: heads.append(e.value))
    started = win.playback.timer.isActive()
    playing_message = win.status_bar.message_label.text()
    t0 = time.time()
    while win.playback.timer.isActive() and time.time() - t0 < 30:
        app.processEvents()
        time.sleep(0.005)
    audio = win.doc.utterance.audio
    print(json.dumps({
        "interval": [iv.start_s, iv.end_s, iv.label],
        "selection": list(win.doc.nav.selection) if win.doc.nav.selection else None,
        "rate": audio.original_rate,
        "channels": audio.num_channels,
        "started": started,
        "frames_written": win.playback.player.frames_written,
        "message": playing_message,
        "message_after": win.status_bar.message_label.text(),
        "playheads": [h for h in heads if h is not None],
        "finished_after_s": time.time() - t0,
    }))
    win.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2)
