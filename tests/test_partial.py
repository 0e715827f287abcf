"""The partial-result path keeps adapters written before it working (no ``on_partial``)."""

from __future__ import annotations

import numpy as np

from steve_qt.core.models import pipeline
from steve_qt.core.models.adapters import Extraction, Transcript
from steve_qt.core.speech.audio import from_array


class OldAdapter:
    """A third-party adapter written against the first Adapter protocol."""

    name, model_id, components, sample_rate = "old", "old", ("encoder",), 16000

    def num_windows(self, n):
        return 1

    def list_sites(self):
        return []

    def extract(self, audio, components=None, window=0, progress=None, should_cancel=None):
        return Extraction({}, Transcript(text=f"{len(audio)} samples"), "old")


class StagedAdapter(OldAdapter):
    def extract(self, audio, components=None, window=0, progress=None, should_cancel=None,
                on_partial=None):
        if on_partial is not None:
            on_partial(Extraction({}, Transcript(), "staged", pending=("transcript",)))
        return Extraction({}, Transcript(text="done"), "staged")


def test_old_adapters_get_no_on_partial_and_still_work():
    audio = from_array(np.zeros(1600, np.float32), 16000)
    got = []
    assert not pipeline.accepts_partial(OldAdapter())
    ex = pipeline.extract(OldAdapter(), audio, on_partial=got.append)
    assert ex.transcript.text == "1600 samples" and ex.pending == () and got == []


def test_staged_adapters_get_on_partial():
    audio = from_array(np.zeros(1600, np.float32), 16000)
    got = []
    assert pipeline.accepts_partial(StagedAdapter())
    ex = pipeline.extract(StagedAdapter(), audio, on_partial=got.append)
    assert [g.pending for g in got] == [("transcript",)] and ex.transcript.text == "done"
