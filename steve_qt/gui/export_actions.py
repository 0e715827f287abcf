"""File > Export Figure... and Export Data...: what is on screen, through core.figures / npzio /
export. Dialogs are module-level functions (like steve_qt.gui.dialogs) so tests can replace them;
errors go to ``dialogs.show_error``.
"""

from __future__ import annotations

from pathlib import Path

from PyQt6 import QtWidgets

from ..core.errors import SteveError
from ..core.models.previews import PREVIEW_NOT_EXPORTED, is_preview
from . import dialogs

DATA_FILTER = "NumPy archive (*.npz)"
FIGURE_WIDTH = "page"  # 7 in, when no width is asked for
#: the save dialog's file types: format x journal width ("column" 3.5 in, "page" 7 in)
FIGURE_FILTERS = {f"{fmt}, {width} width ({inches} in) (*.{ext})": width
                  for fmt, ext in (("PDF", "pdf"), ("SVG", "svg"), ("PNG", "png"))
                  for width, inches in (("page", 7), ("column", 3.5))}


def ask_save_path(parent, title: str, start: str, name_filter: str) -> str | None:
    """A save dialog that does not ask about overwriting itself (confirm_overwrite does)."""
    path, _ = QtWidgets.QFileDialog.getSaveFileName(
        parent, title, start, name_filter,
        options=QtWidgets.QFileDialog.Option.DontConfirmOverwrite)
    return path or None


def ask_figure_path(parent, start: str) -> tuple[str, str] | None:
    """The figure save dialog: (path, width) with the width ("page" or "column") taken from the
    chosen file type, or None when cancelled."""
    path, chosen = QtWidgets.QFileDialog.getSaveFileName(
        parent, "Export figure", start, ";;".join(FIGURE_FILTERS),
        options=QtWidgets.QFileDialog.Option.DontConfirmOverwrite)
    if not path:
        return None
    if not Path(path).suffix and chosen in FIGURE_FILTERS:  # no suffix typed: the chosen type's
        path += chosen[chosen.rindex("*") + 1:-1]
    return path, FIGURE_FILTERS.get(chosen, FIGURE_WIDTH)


def confirm_overwrite(parent, path: str) -> bool:
    answer = QtWidgets.QMessageBox.question(parent, "Replace file?",
                                            f"{path} exists. Replace it?")
    return answer == QtWidgets.QMessageBox.StandardButton.Yes


def ask_yes_no(parent, title: str, text: str) -> bool:
    answer = QtWidgets.QMessageBox.question(parent, title, text)
    return answer == QtWidgets.QMessageBox.StandardButton.Yes


def _start_name(window, suffix: str, component: str | None = None) -> str:
    u = window.doc.utterance
    if u is None or u.path is None:
        return ""
    doc = window.doc
    what = "rollout" if doc.attention.rollout and component is None else (
        f"L{doc.attention.layer}" + ("mean" if doc.attention.head is None else f"H{doc.attention.head}"))
    return str(u.path.with_name(f"{u.path.stem}_{component or doc.attention.component}_{what}{suffix}"))


def _force_for(window, path: Path) -> bool | None:
    """False: path is free; True: the user agreed to replace it; None: the user said no."""
    if not path.exists():
        return False
    return True if confirm_overwrite(window, str(path)) else None


def on_screen_figure(doc, width: str = FIGURE_WIDTH, component: str | None = None):
    """(FigureSpec, FigureData) of what the window shows, rollout included; with ``component``
    (the decoder view) that component at the shown layer and head, within its own."""
    from ..core.figures.attention import from_document

    spec, data = from_document(doc, layout="map", width=width)
    if component is not None:
        m = data.maps.get(component)
        if m is None:
            raise SteveError(f"no {component} attention was extracted for this utterance")
        spec.component = component
        spec.layer = min(doc.attention.layer, m.num_layers - 1)
        spec.head = None if doc.attention.head is None else min(doc.attention.head, m.num_heads - 1)
        if not m.has_kind(spec.kind):
            spec.kind = "weights"
    elif doc.attention.rollout:
        spec.layer = "rollout"
    return spec, data


def export_figure(window, path: str | Path | None = None,
                  width: str = FIGURE_WIDTH, component: str | None = None) -> Path | None:
    """Write the figure of what is on screen (.pdf/.svg/.png) at a journal ``width`` ("page" or
    "column"; the dialog asks both when no path is given); returns its path or None.
    ``component`` names another component than the time views' (the decoder view's)."""
    from ..core.figures.attention import render_figure

    if is_preview(window.doc.attention.extraction):
        dialogs.show_error(window, "Cannot export figure", PREVIEW_NOT_EXPORTED[0].upper()
                           + PREVIEW_NOT_EXPORTED[1:] + ".")
        return None
    if path is None:
        answer = ask_figure_path(window, _start_name(window, ".pdf", component))
        if answer is None:
            return None
        path, width = answer
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".pdf")
    force = _force_for(window, path)
    if force is None:
        return None
    try:
        spec, data = on_screen_figure(window.doc, width, component)
        out = render_figure(spec, data, path, force=force)
    except SteveError as exc:
        dialogs.show_error(window, "Cannot export figure", str(exc))
        return None
    except OSError as exc:
        dialogs.show_error(window, "Cannot export figure", f"{path}: {exc.strerror or exc}")
        return None
    window.doc.nav.message_(f"Figure written to {out} ({width} width)")
    return out


def export_data(window, path: str | Path | None = None,
                with_csv: bool | None = None) -> list[Path]:
    """Write the shown component as .npz (and the phone-interval CSV beside it, if asked)."""
    from ..core.attention.export import write_interval_csv
    from ..core.models.npzio import save_npz

    doc = window.doc
    ex, u = doc.attention.extraction, doc.utterance
    if ex is None or u is None:
        dialogs.show_error(window, "Nothing to export",
                           "No attention has been extracted for this utterance yet.")
        return []
    if is_preview(ex):
        dialogs.show_error(window, "Cannot export data", PREVIEW_NOT_EXPORTED[0].upper()
                           + PREVIEW_NOT_EXPORTED[1:] + ".")
        return []
    if path is None:
        path = ask_save_path(window, "Export data", _start_name(window, ".npz"), DATA_FILTER)
    if not path:
        return []
    path = Path(path)
    if path.suffix.lower() != ".npz":
        path = path.with_suffix(".npz")
    maps = ex.maps[doc.attention.component]
    can_csv = doc.alignment is not None and getattr(doc.alignment, "phones", None) is not None \
        and maps.query_grid is not None and maps.key_grid is not None
    if with_csv is None:
        with_csv = can_csv and ask_yes_no(
            window, "Export data", "Also write the attention aggregated over phone intervals "
            f"as CSV ({path.with_suffix('.csv').name})?")
    written = []
    try:
        force = _force_for(window, path)
        if force is None:
            return []
        written.append(save_npz(path, ex, doc.attention.component, doc.alignment, u.path, force=force))
        if with_csv:
            csv_path = path.with_suffix(".csv")
            force = _force_for(window, csv_path)
            if force is not None:
                written.append(write_interval_csv(csv_path, maps, doc.alignment, force=force))
    except SteveError as exc:
        dialogs.show_error(window, "Cannot export data", str(exc))
    except OSError as exc:
        dialogs.show_error(window, "Cannot export data", f"{path}: {exc.strerror or exc}")
    if written:
        doc.nav.message_("Written: " + ", ".join(p.name for p in written))
    return written

