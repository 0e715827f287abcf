"""fileio.atomic_folder / check_folder_writable: the output folders of `features index` and
`probe` appear whole or not at all, and an existing one is replaced only with --force."""

from __future__ import annotations

import pytest

from steve_qt.core.errors import SteveError
from steve_qt.core.fileio import atomic_folder, check_folder_writable


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_new_folder_appears_whole(tmp_path):
    out = tmp_path / "idx"
    with atomic_folder(out, False, "the index") as tmp:
        (tmp / "a.csv").write_text("x")
        assert not out.exists()  # nothing at OUT while it is written
    assert _names(out) == ["a.csv"] and _names(tmp_path) == ["idx"]


def test_an_existing_folder_is_replaced_only_with_force(tmp_path):
    out = tmp_path / "idx"
    out.mkdir()
    (out / "old.csv").write_text("old")
    with pytest.raises(SteveError, match="use --force"):
        check_folder_writable(out, False, "the index")
    with pytest.raises(SteveError, match="use --force"):
        with atomic_folder(out, False, "the index") as tmp:
            (tmp / "new.csv").write_text("new")
    assert _names(out) == ["old.csv"] and _names(tmp_path) == ["idx"]
    with atomic_folder(out, True, "the index") as tmp:
        (tmp / "new.csv").write_text("new")
    assert _names(out) == ["new.csv"] and _names(tmp_path) == ["idx"]


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    out = tmp_path / "probe"
    with pytest.raises(SteveError, match="cannot write the probe results"):
        with atomic_folder(out, False, "the probe results") as tmp:
            (tmp / "sub" / "x.csv").write_text("no such folder")  # OSError
    assert _names(tmp_path) == []


def test_bad_output_folders(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(SteveError, match="needs a folder for the index"):
        check_folder_writable(tmp_path / "file", True, "the index")
    with pytest.raises(SteveError, match="does not exist"):
        check_folder_writable(tmp_path / "nowhere" / "idx", False, "the index")
    assert check_folder_writable(tmp_path / "idx", False, "the index") == tmp_path / "idx"
