"""Acoustic tracks with Praat's own algorithms (praat-parselmouth): pitch, formants, intensity.

The numbers are parselmouth's, so they equal Praat's for the same parameters:

- pitch: ``Sound: To Pitch`` (autocorrelation), Praat's defaults: time step 0.75 / pitch floor,
  pitch floor 75 Hz, pitch ceiling 600 Hz;
- formants: ``Sound: To Formant (burg)``, Praat's defaults: time step 0.25 x window length,
  5 formants up to 5500 Hz, window length 0.025 s, pre-emphasis from 50 Hz;
- intensity: ``Sound: To Intensity``, Praat's defaults: minimum pitch 100 Hz, time step
  0.8 / minimum pitch / 4, mean subtracted. Praat gives a frame of zero power -300 dB; here
  that frame is undefined (NaN).

Each track keeps its own frame times (Praat centres each analysis's frames differently) and its
values as float64 arrays with NaN where Praat leaves the value undefined (unvoiced frames, frames
with fewer formants than asked for), never 0. :func:`sample_tracks` reads the tracks at any set of
times (a model's frame centres, the CSV's rows) the way Praat's ``Get value at time`` does with
linear interpolation (Praat's ``Sampled_getValueAtX``): NaN when the nearest frame is undefined
or more than half a frame away from the time, the nearest frame's value when the other frame
around the time is undefined or missing, else the linear interpolation of the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import SteveError

MEASURES = ("f0", "f1", "f2", "f3", "intensity")
MEASURE_UNITS = {"f0": "Hz", "f1": "Hz", "f2": "Hz", "f3": "Hz", "intensity": "dB"}
CSV_COLUMNS = ("time_s", "f0_hz", "f1_hz", "f2_hz", "f3_hz", "intensity_db")
TRACKS = ("pitch", "formants", "intensity")
PRAAT_ZERO_DB = -300.0  # what To Intensity gives a frame of digital silence (log of 0)


@dataclass(frozen=True)
class AcousticParams:
    """Praat's parameters, with Praat's defaults (None: Praat's automatic time step)."""

    time_step: float | None = None
    pitch_floor: float = 75.0
    pitch_ceiling: float = 600.0
    max_number_of_formants: float = 5.0
    maximum_formant: float = 5500.0
    window_length: float = 0.025
    pre_emphasis_from: float = 50.0
    minimum_pitch: float = 100.0  # To Intensity

    def shortest_sound(self) -> float:
        """The shortest sound (s) every analysis accepts: Praat's longest analysis window
        (To Pitch: 3 periods of the pitch floor; To Intensity: 6.4 / minimum pitch; To Formant:
        twice the window length)."""
        return max(3.0 / self.pitch_floor, 6.4 / self.minimum_pitch, 2.0 * self.window_length)

    def check(self) -> None:
        if not 0 < self.pitch_floor < self.pitch_ceiling:
            raise SteveError(f"the pitch floor ({self.pitch_floor} Hz) must be above 0 and below "
                             f"the pitch ceiling ({self.pitch_ceiling} Hz)")
        if self.maximum_formant <= 0 or self.max_number_of_formants < 1:
            raise SteveError("the formant ceiling must be above 0 Hz and the number of formants "
                             "at least 1")
        if self.window_length <= 0 or self.minimum_pitch <= 0:
            raise SteveError("the window length and the intensity's minimum pitch must be above 0")
        if self.time_step is not None and self.time_step <= 0:
            raise SteveError(f"the time step must be above 0 s, got {self.time_step}")


@dataclass
class Track:
    """One measure's frames: times (n,) s and values (n,), NaN where undefined."""

    times: np.ndarray
    values: np.ndarray
    unit: str
    dx: float = math.nan  # Praat's time step of the frames (times[0] is Praat's x1)
    closed_edges: bool = False  # Praat's Vector query (Intensity): a time exactly half a frame
    # beyond the first or last frame still reads that frame; Pitch and Formant do not

    @property
    def step(self) -> float:
        if math.isfinite(self.dx):
            return self.dx
        return float(self.times[1] - self.times[0]) if len(self.times) > 1 else math.nan

    @property
    def defined(self) -> int:
        return int(np.isfinite(self.values).sum())


@dataclass
class AcousticTracks:
    """f0, f1, f2, f3, intensity of one sound, each on its own frames."""

    tracks: dict[str, Track]
    duration: float
    params: AcousticParams = field(default_factory=AcousticParams)

    def __getitem__(self, measure: str) -> Track:
        return self.tracks[measure]

    def undefined_measures(self) -> list[str]:
        """Measures with no defined frame at all (silence, noise)."""
        return [m for m in MEASURES if self.tracks[m].defined == 0]

    def sample(self, times: np.ndarray) -> dict[str, np.ndarray]:
        return sample_tracks(self, times)


def _sound(samples: np.ndarray, rate: int):
    import parselmouth

    return parselmouth.Sound(np.asarray(samples, dtype=np.float64), sampling_frequency=float(rate))


def compute_tracks(samples: np.ndarray, rate: int, params: AcousticParams | None = None,
                   max_formant_tracks: int = 3) -> AcousticTracks:
    """Pitch, the first ``max_formant_tracks`` formants and intensity of mono ``samples``.

    A sound shorter than Praat's longest analysis window is a SteveError; silence or noise is
    not (their tracks are undefined where Praat finds no pitch or formant)."""
    import parselmouth

    params = params or AcousticParams()
    params.check()
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise SteveError(f"acoustic tracks need mono samples, got shape {samples.shape}")
    duration = len(samples) / rate
    need = params.shortest_sound()
    if duration < need:
        raise SteveError(f"the sound is {duration:.3f} s long, shorter than Praat's analysis "
                         f"window ({need:.3f} s for these parameters)")
    snd = _sound(samples, rate)
    try:
        pitch = snd.to_pitch_ac(time_step=params.time_step, pitch_floor=params.pitch_floor,
                                pitch_ceiling=params.pitch_ceiling)
        formant = snd.to_formant_burg(time_step=params.time_step,
                                      max_number_of_formants=params.max_number_of_formants,
                                      maximum_formant=params.maximum_formant,
                                      window_length=params.window_length,
                                      pre_emphasis_from=params.pre_emphasis_from)
        intensity = snd.to_intensity(minimum_pitch=params.minimum_pitch,
                                     time_step=params.time_step, subtract_mean=True)
    except parselmouth.PraatError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SteveError(f"Praat could not analyse the sound: {first}") from exc
    tracks: dict[str, Track] = {}
    f0 = np.array(pitch.selected_array["frequency"], dtype=np.float64)
    f0[f0 == 0] = np.nan  # Praat's unvoiced frames
    tracks["f0"] = Track(np.asarray(pitch.xs(), dtype=np.float64), f0, "Hz", float(pitch.dx))
    ft = np.asarray(formant.xs(), dtype=np.float64)
    for k in range(1, max_formant_tracks + 1):
        vals = np.array([formant.get_value_at_time(k, t) for t in ft], dtype=np.float64)
        tracks[f"f{k}"] = Track(ft, vals, "Hz", float(formant.dx))
    it = np.array(intensity.values[0], dtype=np.float64)
    it[it <= PRAAT_ZERO_DB] = np.nan  # Praat's value for a frame of zero power
    tracks["intensity"] = Track(np.asarray(intensity.xs(), dtype=np.float64), it, "dB",
                                float(intensity.dx), closed_edges=True)
    return AcousticTracks(tracks, duration, params)


def audio_tracks(audio, params: AcousticParams | None = None) -> AcousticTracks:
    """Tracks of an :class:`~steve_qt.core.speech.audio.Audio`, from its mono samples at the
    file's own rate (Praat analyses the file as it is, not the model's 16 kHz copy)."""
    from .audio import to_mono

    return compute_tracks(to_mono(audio.original), audio.original_rate, params)


def sample_track(track: Track, times: np.ndarray) -> np.ndarray:
    """``track`` at ``times`` (m,) -> (m,), as Praat's ``Get value at time`` (linear)."""
    times = np.asarray(times, dtype=np.float64)
    t, v = track.times, track.values
    out = np.full(times.shape, np.nan)
    if len(t) == 0:
        return out
    dx = track.step if math.isfinite(track.step) else 1.0
    # Praat's arithmetic, 1-based: ireal = (x - x1) / dx + 1, ileft = floor(ireal)
    ireal = (times - t[0]) / dx + 1.0
    ileft = np.floor(ireal).astype(np.int64)
    phase = ireal - ileft
    far_is_right = phase < 0.5
    near = np.where(far_is_right, ileft, ileft + 1) - 1  # to 0-based
    far = np.where(far_is_right, ileft + 1, ileft) - 1
    phase = np.where(far_is_right, phase, 1.0 - phase)
    inside = (near >= 0) & (near < len(t))
    if track.closed_edges:
        inside |= (ireal >= 0.5) & (ireal <= len(t) + 0.5)
        near = np.clip(near, 0, len(t) - 1)
    near, far, phase = near[inside], far[inside], phase[inside]
    fnear = v[near]
    far_ok = (far >= 0) & (far < len(t))
    ffar = np.where(far_ok, v[np.clip(far, 0, len(t) - 1)], np.nan)
    # Praat: nearest frame undefined -> undefined; far frame missing or undefined -> the nearest
    val = np.where(np.isfinite(ffar), fnear + phase * (ffar - fnear), fnear)
    out[inside] = val
    return out


def sample_tracks(tracks: AcousticTracks, times: np.ndarray) -> dict[str, np.ndarray]:
    """Every measure at ``times`` (e.g. a model's frame centres): measure -> (m,) float64."""
    return {m: sample_track(tr, times) for m, tr in tracks.tracks.items()}


def tracks_table(tracks: AcousticTracks) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The CSV's rows: one per pitch analysis frame (times), every measure read at it."""
    times = tracks["f0"].times
    return times, sample_tracks(tracks, times)


def tracks_csv(tracks: AcousticTracks) -> str:
    """time_s,f0_hz,f1_hz,f2_hz,f3_hz,intensity_db; empty cells where undefined."""
    import csv
    import io

    times, vals = tracks_table(tracks)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    cols = [vals[m] for m in MEASURES]
    for i, t in enumerate(times):
        w.writerow([f"{t:.6f}"] + ["" if not np.isfinite(c[i]) else f"{c[i]:.6g}" for c in cols])
    return buf.getvalue()


def describe_undefined(tracks: AcousticTracks) -> str:
    """One line naming the tracks that are undefined throughout ("" when every track has
    frames): silence, noise or music give no pitch, and digital silence no formants either."""
    parts = [f"{m} in all {len(tracks[m].values)} frames" for m in MEASURES
             if tracks[m].defined == 0]
    if not parts:
        return ""
    none = tracks.undefined_measures()
    what = ("no pitch or formant found" if {"f0", "f1"} <= set(none) else
            "no pitch found" if "f0" in none else "tracks undefined")
    return f"{what}: undefined " + "; ".join(parts) + " (silence, noise or music?)"
