"""Child process of the time-to-first-map benchmark (no GUI): the steps ``steve-qt FILE`` takes.

Prints one JSON line of wall-clock stamps (``time.time()``; the parent stamped the launch):
``t_main`` when this module starts running (interpreter up), ``t_imports`` after the heavy
imports, ``t_load`` after the embedded model is loaded, ``t_extract`` after the audio and its
alignment are opened and attention extracted (all components, as ``adapter.extract`` does by
default).
"""

from __future__ import annotations

import time

T_MAIN = time.time()

import argparse  # noqa: E402
import json  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import whisper  # noqa: F401

    from steve_qt.core.models import pipeline

    t_imports = time.time()
    adapter = pipeline.get_adapter("whisper")
    t_load = time.time()
    try:
        audio = pipeline.open_utterance(args.file).audio
        opened = "open_utterance"
    except ModuleNotFoundError:  # steve_qt.core.speech.alignment not written yet
        from steve_qt.core.speech.audio import load_audio

        audio = load_audio(args.file)
        opened = "load_audio (no alignment module yet)"
    ex = pipeline.extract(adapter, audio)
    t_extract = time.time()
    print(json.dumps(dict(t_main=T_MAIN, t_imports=t_imports, t_load=t_load,
                          t_extract=t_extract, components=sorted(ex.maps),
                          duration=audio.duration, opened=opened)), flush=True)


if __name__ == "__main__":
    main()
