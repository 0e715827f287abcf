"""steve_qt.core.state.experiments: the Experiments dock's evented model and its tasks (fake model)."""

import pytest

from steve_qt.core.errors import SteveError
from steve_qt.core.state.experiments import K_STOPS, Experiments, lm_task, span_task


def test_set_emits_and_clear_forgets_results():
    m = Experiments()
    seen = []
    m.events.span_result.connect(lambda e: seen.append(("span", e.value)))
    m.events.k.connect(lambda e: seen.append(("k", e.value)))
    m.set("k", 5)
    m.set("span_result", ["x"])
    m.clear()
    assert seen == [("k", 5), ("span", ["x"]), ("span", None)]
    assert m.span_result is None and m.k == 5  # the slider's position is not a result
    with pytest.raises(AttributeError):
        m.set("nope", 1)
    assert K_STOPS[-1] is None and list(K_STOPS[:-1]) == sorted(K_STOPS[:-1])


def test_tasks_check_their_input():
    class NoInterventions:
        model_id = "wav2vec2"

    with pytest.raises(SteveError, match="prompt is empty"):
        lm_task("", "  ")(type("A", (), {"supports_interventions": True})(), None, None)
    with pytest.raises(SteveError, match="does not support interventions"):
        span_task([0.0] * 16000, 0.1, 0.2, "padding", 0, "ref")(NoInterventions(), None, None)
