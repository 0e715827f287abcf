"""Run in a subprocess by test_gui_record.py, with HOME pointing at an ALSA configuration.

Opens the window, sets the recordings folder, presses File > Record... (Ctrl+R's action), lets the
dialog record for a moment, presses Stop, and prints JSON: the opened utterances, the message,
what the level meter showed.
"""

import json
import os
import sys

os.environ["QT_QPA_PLATFORM"] = "offscreen"


def main(folder: str) -> None:
    from PyQt6 import QtCore, QtWidgets

    from steve_qt.gui import settings
    from steve_qt.gui.app import make_app
    from steve_qt.gui.main_window import QtMainWindow
    from steve_qt.gui.record_dialog import QtRecordDialog

    app = make_app()
    settings.set_record_folder(folder)
    win = QtMainWindow(auto_extract=False)
    win.resize(1200, 800)
    win.show()
    app.processEvents()
    seen = {"meter": 0, "dialog": False}

    def press_stop():
        dlg = next((w for w in QtWidgets.QApplication.topLevelWidgets()
                    if isinstance(w, QtRecordDialog) and w.isVisible()), None)
        if dlg is None:
            QtCore.QTimer.singleShot(20, press_stop)
            return
        seen["dialog"] = True
        if dlg.meter.value() <= 0:  # wait for the meter to show the input
            QtCore.QTimer.singleShot(20, press_stop)
            return
        seen["meter"] = dlg.meter.value()
        seen["elapsed_text"] = dlg.elapsed.text()
        dlg.stop_button.click()

    QtCore.QTimer.singleShot(0, press_stop)
    win.record_action.trigger()
    app.processEvents()
    print(json.dumps({
        **seen,
        "entries": [str(e.path) for e in win.doc.files.entries],
        "current": win.doc.files.current,
        "message": win.status_bar.message_label.text(),
        "shortcut": win.record_action.shortcut().toString(),
        "rate": win.doc.utterance.audio.rate if win.doc.utterance else None,
    }))
    win.close()


if __name__ == "__main__":
    main(sys.argv[1])
