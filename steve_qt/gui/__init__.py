"""The desktop application (PyQt6 + pyqtgraph): a thin layer of views over core.document.

Only this package imports Qt. ``steve_qt.gui.app.run_gui(argv)`` starts the window.
"""
