"""File > Export Figure... / Export Data... on the real tiny.en extraction of dark_suit."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from steve_qt.gui import export_actions


@pytest.fixture
def answers(monkeypatch):
    """Replace the save dialog and the questions; record what was asked."""
    rec = {"paths": [], "overwrite": [], "asked": [], "yes": True, "csv": False,
           "width": "page"}
    monkeypatch.setattr(export_actions, "ask_save_path",
                        lambda parent, title, start, flt: rec["paths"].pop(0) if rec["paths"] else None)
    monkeypatch.setattr(export_actions, "ask_figure_path",
                        lambda parent, start: (rec["paths"].pop(0), rec["width"])
                        if rec["paths"] else None)

    def confirm(parent, path):
        rec["asked"].append(path)
        return rec["yes"]

    monkeypatch.setattr(export_actions, "confirm_overwrite", confirm)
    monkeypatch.setattr(export_actions, "ask_yes_no", lambda parent, title, text: rec["csv"])
    return rec


def pdftotext(path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def test_menu_entries_enabled(loaded):
    assert loaded.export_figure_action.isEnabled() and loaded.export_data_action.isEnabled()


def test_export_figure_is_what_is_on_screen(loaded, answers, tmp_path, dialogs_seen):
    win = loaded
    doc = win.doc
    doc.attention.set_layer(1)
    doc.attention.set_head(2)
    doc.attention.set_colormap("magma")
    doc.nav.set_view(0.5, 2.0)
    spec, _ = export_actions.on_screen_figure(doc)
    assert (spec.component, spec.layer, spec.head, spec.colormap, spec.span) == \
        ("encoder", 1, 2, "magma", (0.5, 2.0))
    out = tmp_path / "fig.pdf"
    answers["paths"].append(str(out))
    win.export_figure_action.trigger()
    assert out.exists() and not dialogs_seen.errors
    text = pdftotext(out)
    assert "layer 1, head 2" in text and "encoder" in text.lower()
    # phone labels of the visible span are on the axes
    shown = [iv.label for iv in doc.alignment.phones.intervals
             if 0.7 < (iv.start_s + iv.end_s) / 2 < 1.8 and iv.label.isascii() and len(iv.label) == 1]
    assert shown and any(lab in text.split() for lab in shown)

    # exists: the user says no -> untouched; yes -> replaced
    before = out.read_bytes()
    answers["yes"] = False
    doc.attention.set_head(4)
    answers["paths"].append(str(out))
    win.export_figure_action.trigger()
    assert answers["asked"] == [str(out)] and out.read_bytes() == before
    answers["yes"] = True
    answers["paths"].append(str(out))
    win.export_figure_action.trigger()
    assert "layer 1, head 4" in pdftotext(out)


def test_export_figure_rollout_and_png(loaded, answers, tmp_path):
    win = loaded
    win.doc.attention.set_rollout(True)
    out = export_actions.export_figure(win, tmp_path / "roll.png")
    assert out is not None and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = export_actions.export_figure(win, tmp_path / "roll.pdf")
    assert "rollout" in pdftotext(pdf)


def test_exported_encoder_figure_has_the_whisper_word_tier_as_on_screen(loaded, answers,
                                                                         tmp_path):
    win = loaded
    win.doc.nav.show_all()
    words = [w.text.strip() for w in win.doc.attention.extraction.transcript.words]
    assert "3D" in words  # what tiny.en hears for "greasy": only the model's tier has it
    out = export_actions.export_figure(win, tmp_path / "enc.pdf")
    text = pdftotext(out)
    assert "whisper" in text and "3D" in text and "greasy" in text  # both word tiers


def test_export_figure_width_comes_from_the_chosen_file_type(loaded, answers, tmp_path):
    """The save dialog's file types offer each format at page (7 in) and column (3.5 in) width;
    the PNG (300 dpi) is as wide as the chosen width."""
    import matplotlib.image as mpimg

    assert set(export_actions.FIGURE_FILTERS.values()) == {"page", "column"}
    assert sum(k.startswith("PDF") for k in export_actions.FIGURE_FILTERS) == 2
    widths = {}
    for width in ("column", "page"):
        answers["width"] = width
        out = tmp_path / f"{width}.png"
        answers["paths"].append(str(out))
        loaded.export_figure_action.trigger()
        widths[width] = mpimg.imread(out).shape[1]
        assert f"({width} width)" in loaded.status_bar.message_label.text()
    assert widths == {"column": 1050, "page": 2100}


def test_export_figure_error_goes_to_dialog(loaded, answers, tmp_path, dialogs_seen):
    bad = tmp_path / "fig.tiff"
    assert export_actions.export_figure(loaded, bad) is None
    assert dialogs_seen.errors and "tiff" in dialogs_seen.errors[0][1]
    missing = tmp_path / "no" / "such" / "dir" / "fig.pdf"
    assert export_actions.export_figure(loaded, missing) is None
    assert len(dialogs_seen.errors) == 2 and str(missing.parent) in dialogs_seen.errors[1][1]


def test_export_data_npz_and_csv(loaded, answers, tmp_path, dialogs_seen):
    from steve_qt.core.models.npzio import load_npz

    win = loaded
    doc = win.doc
    out = tmp_path / "data.npz"
    answers["paths"].append(str(out))
    answers["csv"] = True
    win.export_data_action.trigger()
    assert not dialogs_seen.errors
    back = load_npz(out)
    np.testing.assert_array_equal(back.maps.weights, doc.attention.maps.weights)
    csv = out.with_suffix(".csv")
    lines = csv.read_text().splitlines()
    n, m = doc.attention.maps.num_layers, doc.attention.maps.num_heads
    p = len(doc.alignment.phones.intervals)
    assert len(lines) == 1 + n * m * p * p
    # again: refused unless confirmed
    answers["yes"] = False
    assert export_actions.export_data(win, out, with_csv=False) == []
    assert answers["asked"] == [str(out)]


def test_export_data_without_extraction(window, answers, dialogs_seen):
    assert export_actions.export_data(window) == []
    assert dialogs_seen.errors[0][0] == "Nothing to export"


def test_export_figure_without_extraction(window, answers, tmp_path, dialogs_seen):
    assert export_actions.export_figure(window, tmp_path / "x.pdf") is None
    assert dialogs_seen.errors and "nothing to draw" in dialogs_seen.errors[0][1]
    assert not (tmp_path / "x.pdf").exists()


def test_figure_dialog_gives_width_and_suffix_of_the_chosen_type(qapp, monkeypatch):
    from PyQt6 import QtWidgets

    types = list(export_actions.FIGURE_FILTERS)
    answers = iter([("/x/fig", types[3]), ("/x/fig.pdf", types[1]), ("/x/fig", types[4]),
                    ("", types[0])])
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName",
                        lambda *a, **k: next(answers))
    assert export_actions.ask_figure_path(None, "") == ("/x/fig.svg", "column")
    assert export_actions.ask_figure_path(None, "") == ("/x/fig.pdf", "column")
    assert export_actions.ask_figure_path(None, "") == ("/x/fig.png", "page")
    assert export_actions.ask_figure_path(None, "") is None  # cancelled
