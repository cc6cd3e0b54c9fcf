"""The Qt bindings a ``qt`` host may have imported, in the order they are looked for.

Apart from ``qt.py`` so that host detection can ask which binding a process holds without loading
the Qt dispatcher (its memory is not free), and ``qt.py`` need not import its own package.
"""

QT_BINDINGS = ("PySide6", "PyQt6", "PySide2", "PyQt5")
