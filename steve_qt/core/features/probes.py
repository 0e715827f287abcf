"""Layer-wise linear probes: how well each site's activations predict the frame's phone.

The core works on arrays -- per file a (T, D) activation matrix and T per-frame phone labels --
so it runs without a model; ``ProbeTask`` and ``run_probes`` feed it from a corpus.

Targets (``TARGETS``), per frame, from the phone interval the frame belongs to (the same frame ->
interval rule as the phone aggregation and the feature index, ``analysis.interval_frames``):

- ``phone``: the phone label as the alignment writes it;
- ``class``: vowel or consonant (``phones.phone_class(label).kind``);
- ``manner``: stop, fricative, nasal, ..., monophthong, diphthong (``.manner``);
- ``voicing``: voiced or voiceless (``.voicing``).

Frames in silence, with a label of unknown class, or outside every interval are left out of all
classification targets, so every such target of a site is scored on the same frames. The phone
target is the normalised phone (:func:`steve_qt.core.speech.phone_sets.normalise_labels`), so a
corpus' long tail of one-off labels does not become classes of its own.

Regression targets (``REGRESSION_TARGETS``): ``f0``, ``f1``, ``f2``, ``f3``, ``intensity`` --
Praat's tracks (:mod:`steve_qt.core.speech.acoustics`) read at the frame centres; frames where
the measure is undefined are left out (silence and phone labels do not matter here). The probe is
a ridge regression (``StandardScaler`` + ``Ridge(alpha)``) cross-validated with the same
``GroupKFold`` over files; ``r2`` is ``1 - sum((y - y_hat)**2) / sum((y - mean(y))**2)`` over all
frames, each predicted once by the fold that did not train on its file.

The probe: standardised features (``StandardScaler``) and a multinomial logistic regression
(scikit-learn, L2, ``C``), cross-validated with ``GroupKFold`` over files, so no file is in both
the training and the test part of a fold. Each frame is tested exactly once; ``accuracy`` is the
fraction of all frames predicted right (pooled over folds). ``majority_baseline`` is scored the
same way: each fold predicts the most frequent label of its training part (ties: the label that
sorts first) for every test frame.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..models.adapters import Site
from ..errors import SteveError
from ..fileio import atomic_folder, check_folder_writable, csv_text
from ..speech.phones import phone_class
from .runner import FILES_COLUMNS, never_raising

TARGETS = ("phone", "class", "manner", "voicing")
REGRESSION_TARGETS = ("f0", "f1", "f2", "f3", "intensity")
ALL_TARGETS = TARGETS + REGRESSION_TARGETS
DEFAULT_ALPHA = 1.0
DEFAULT_FOLDS = 5
EXCLUDED = ""  # the label of a frame that is left out


# --- labels ---------------------------------------------------------------------------------------
def frame_targets(phones: Sequence[str]) -> dict[str, np.ndarray]:
    """Per-frame phone labels ("" = no interval) -> target -> (T,) str labels, "" = left out."""
    from ..speech.phone_sets import normalise_labels

    out = {t: np.full(len(phones), EXCLUDED, dtype=object) for t in TARGETS}
    norm = normalise_labels([(p or "").strip() for p in phones])
    for i, label in enumerate(phones):
        label = (label or "").strip()
        if not label or not norm[i]:
            continue
        pc = phone_class(label)
        if pc.kind not in ("vowel", "consonant"):
            continue  # silence or unknown
        out["phone"][i] = norm[i]
        out["class"][i] = pc.kind
        out["manner"][i] = pc.manner
        out["voicing"][i] = pc.voicing
    return {t: a.astype(str) for t, a in out.items()}


# --- one probe ------------------------------------------------------------------------------------
@dataclass
class ProbeScore:
    accuracy: float
    majority_baseline: float
    n: int  # frames scored
    classes: int  # distinct labels among them
    files: int  # files that gave frames
    folds: int


def majority_label(y: np.ndarray) -> str:
    """Most frequent label; ties go to the label that sorts first."""
    counts = Counter(y.tolist())
    top = max(counts.values())
    return min(label for label, c in counts.items() if c == top)


def fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, c: float = 1.0,
                max_iter: int = 1000) -> np.ndarray:
    """Standardise, fit a logistic regression on the training rows, predict the test rows."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(set(y_train.tolist())) == 1:
        return np.full(len(x_test), y_train[0], dtype=y_train.dtype)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_train, y_train)
    return model.predict(x_test)


def probe_accuracy(xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], folds: int = DEFAULT_FOLDS,
                   c: float = 1.0) -> ProbeScore:
    """Cross-validated accuracy of a linear probe and of the majority baseline.

    ``xs``: per file (T_i, D) activations; ``ys``: per file (T_i,) labels, "" = leave the frame
    out. Folds: ``GroupKFold(min(folds, files))`` with one group per file.
    """
    from sklearn.model_selection import GroupKFold

    if len(xs) != len(ys):
        raise ValueError(f"{len(xs)} activation matrices but {len(ys)} label arrays")
    rows, labels, groups = [], [], []
    for g, (x, y) in enumerate(zip(xs, ys)):
        x, y = np.asarray(x), np.asarray(y).astype(str)
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"file {g}: {x.shape[0]} activation rows but {y.shape[0]} labels")
        keep = y != EXCLUDED
        if keep.any():
            rows.append(x[keep].astype(np.float32))
            labels.append(y[keep])
            groups.append(np.full(int(keep.sum()), g))
    if len(rows) < 2:
        raise SteveError(f"a probe needs labelled frames from at least 2 files, got {len(rows)}")
    x, y, grp = np.concatenate(rows), np.concatenate(labels), np.concatenate(groups)
    k = min(folds, len(rows))
    if k < 2:
        raise SteveError(f"a probe needs at least 2 folds, got {folds}")
    correct = base = 0
    for train, test in GroupKFold(n_splits=k).split(x, y, grp):
        pred = fit_predict(x[train], y[train], x[test], c)
        correct += int((pred == y[test]).sum())
        base += int((y[test] == majority_label(y[train])).sum())
    n = len(y)
    return ProbeScore(correct / n, base / n, n, len(set(y.tolist())), len(rows), k)


@dataclass
class RegressionScore:
    r2: float
    n: int  # frames scored
    files: int
    folds: int


def probe_r2(xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], folds: int = DEFAULT_FOLDS,
             alpha: float = DEFAULT_ALPHA, what: str = "the target") -> RegressionScore:
    """Cross-validated R² of a ridge regression from activations to a continuous target.

    ``xs``: per file (T_i, D); ``ys``: per file (T_i,) float, NaN = leave the frame out. Folds:
    ``GroupKFold(min(folds, files))`` by file; R² pooled over every frame's out-of-fold
    prediction."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(xs) != len(ys):
        raise ValueError(f"{len(xs)} activation matrices but {len(ys)} target arrays")
    rows, vals, groups = [], [], []
    for g, (x, y) in enumerate(zip(xs, ys)):
        x, y = np.asarray(x), np.asarray(y, dtype=np.float64)
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"file {g}: {x.shape[0]} activation rows but {y.shape[0]} targets")
        keep = np.isfinite(y)
        if keep.any():
            rows.append(x[keep].astype(np.float32))
            vals.append(y[keep])
            groups.append(np.full(int(keep.sum()), g))
    if not rows:
        raise SteveError(f"{what} is undefined in every frame: nothing to probe")
    if len(rows) < 2:
        raise SteveError(f"a probe of {what} needs defined frames from at least 2 files, got "
                         f"{len(rows)}")
    x, y, grp = np.concatenate(rows), np.concatenate(vals), np.concatenate(groups)
    k = min(folds, len(rows))
    if k < 2:
        raise SteveError(f"a probe needs at least 2 folds, got {folds}")
    pred = np.empty_like(y)
    for train, test in GroupKFold(n_splits=k).split(x, y, grp):
        model = make_pipeline(StandardScaler(), Ridge(alpha=alpha))
        model.fit(x[train], y[train])
        pred[test] = model.predict(x[test])
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - pred) ** 2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    return RegressionScore(r2, len(y), len(rows), k)


# --- a table of probes ----------------------------------------------------------------------------
@dataclass
class ProbeFile:
    """One file's share of a probe run: activations per site and the per-frame phone labels."""

    path: str
    ok: bool = False
    reason: str = ""
    acts: dict[str, np.ndarray] = field(default_factory=dict)  # site -> (T, D) float16
    phones: list[str] = field(default_factory=list)  # (T,) "" where no interval
    windows: int = 0
    extracted: int = 0  # windows the model ran on
    cached: int = 0  # windows read from the activation cache
    seconds: float = 0.0
    acoustic: dict = field(default_factory=dict)  # measure -> (T,) float64, NaN where undefined


PROBE_COLUMNS = ("site", "layer", "target", "accuracy", "majority_baseline", "r2", "n",
                 "classes", "files", "folds")


def probe_table(files: Sequence[ProbeFile], sites: Sequence[Site],
                targets: Sequence[str] = TARGETS, folds: int = DEFAULT_FOLDS, c: float = 1.0,
                progress: Callable[[int, int, str], None] | None = None,
                alpha: float = DEFAULT_ALPHA) -> list[dict]:
    """One row per (site, target), in site order then ``targets`` order."""
    used = [f for f in files if f.ok]
    labels = [frame_targets(f.phones) for f in used]
    rows = []
    total = len(sites) * len(targets)
    for s in sites:
        xs = [f.acts[s.name] for f in used]
        for t in targets:
            if t in REGRESSION_TARGETS:
                reg = probe_r2(xs, [f.acoustic[t] for f in used], folds, alpha, t)
                rows.append({"site": s.name, "layer": s.layer, "kind": s.kind, "target": t,
                             "accuracy": float("nan"), "majority_baseline": float("nan"),
                             "r2": reg.r2, "n": reg.n, "classes": None, "files": reg.files,
                             "folds": reg.folds})
                if progress is not None:
                    progress(len(rows), total, f"{s.name} {t}")
                continue
            score = probe_accuracy(xs, [lab[t] for lab in labels], folds, c)
            rows.append({"site": s.name, "layer": s.layer, "kind": s.kind, "target": t,
                         "accuracy": score.accuracy, "majority_baseline": score.majority_baseline,
                         "r2": float("nan"), "n": score.n, "classes": score.classes,
                         "files": score.files, "folds": score.folds})
            if progress is not None:
                progress(len(rows), total, f"{s.name} {t}")
    return rows


def probe_csv(rows: Sequence[dict]) -> str:
    def num(x) -> str:
        return "" if x is None or not np.isfinite(x) else f"{x:.6f}"

    return csv_text(PROBE_COLUMNS, [
        [r["site"], "" if r["layer"] is None else r["layer"], r["target"],
         num(r["accuracy"]), num(r["majority_baseline"]), num(r.get("r2")), r["n"],
         "" if r["classes"] is None else r["classes"], r["files"], r["folds"]] for r in rows])


# --- the figure -----------------------------------------------------------------------------------
TARGET_COLOURS = {"phone": "#1f77b4", "class": "#d62728", "manner": "#2ca02c",
                  "voicing": "#9467bd", "f0": "#1f3fbf", "f1": "#e03c31", "f2": "#a0522d",
                  "f3": "#ff7f0e", "intensity": "#bcbd22"}


GROUP_STYLES = {"residual": ("-", "o"), "mlp": (":", "s")}  # line style, marker


def line_group(kind: str) -> str:
    """Which line a site joins: the residual stream (its final layer norm continues it) or the
    MLP neurons."""
    return "mlp" if kind == "mlp" else "residual"


def probe_figure(rows: Sequence[dict], title: str = "", width_in: float = 3.5):
    """Accuracy by layer, one line per target (colour; and per line group -- residual stream
    solid, MLP dotted -- when both are probed); the majority baselines dashed in the same
    colour. A site without a layer (a final layer norm) sits one step right of the last layer,
    labelled "post". Returns a matplotlib Figure (Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    layers = [r["layer"] for r in rows if r["layer"] is not None]
    post_x = (max(layers) + 1) if layers else 0
    has_post = any(r["layer"] is None for r in rows)

    def x_of(r) -> int:
        return post_x if r["layer"] is None else r["layer"]

    groups = [g for g in GROUP_STYLES if any(line_group(r["kind"]) == g for r in rows)]
    targets = list(dict.fromkeys(r["target"] for r in rows))
    cls_targets = [t for t in targets if t not in REGRESSION_TARGETS]
    reg_targets = [t for t in targets if t in REGRESSION_TARGETS]
    with _rc():
        panels = int(bool(cls_targets)) + int(bool(reg_targets))
        fig = Figure(figsize=(width_in, width_in * (0.8 if panels == 1 else 1.35)),
                     layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
        ax = axes[0]
        if reg_targets:
            rax = axes[-1]
            for t in reg_targets:
                for group in groups:
                    sel = sorted((r for r in rows if r["target"] == t
                                  and line_group(r["kind"]) == group), key=x_of)
                    if sel:
                        style, marker = GROUP_STYLES[group]
                        rax.plot([x_of(r) for r in sel], [r["r2"] for r in sel], marker=marker,
                                 markersize=3, linestyle=style, color=TARGET_COLOURS.get(t))
            rax.set_ylabel("ridge probe R² (cross-validated)")
            rax.axhline(0, color="0.5", linewidth=0.4)
            rax.set_ylim(min(0.0, min(r["r2"] for r in rows if r["target"] in reg_targets
                                      and np.isfinite(r["r2"])) - 0.05), 1)
            rax.grid(True, linewidth=0.3, alpha=0.5)
            if not cls_targets:
                ax = rax
        for t in cls_targets:
            colour = TARGET_COLOURS.get(t)
            for group in groups:
                sel = sorted((r for r in rows if r["target"] == t and line_group(r["kind"]) == group),
                             key=x_of)
                if not sel:
                    continue
                x = [x_of(r) for r in sel]
                style, marker = GROUP_STYLES[group]
                ax.plot(x, [r["accuracy"] for r in sel], marker=marker, markersize=3,
                        linestyle=style, color=colour)
                ax.plot(x, [r["majority_baseline"] for r in sel], linestyle="--",
                        linewidth=0.6, color=colour, alpha=0.7)
        xs = sorted({x_of(r) for r in rows})
        bottom = axes[-1]
        bottom.set_xticks(xs)
        bottom.set_xticklabels(["post" if has_post and x == post_x else str(x) for x in xs])
        bottom.set_xlabel("layer")
        if cls_targets:
            ax.set_ylabel("probe accuracy (dashed: majority)")
            ax.set_ylim(0, 1)
            ax.grid(True, linewidth=0.3, alpha=0.5)
        # the legend: targets by colour, and (with both groups) the groups by line style
        handles = [Line2D([], [], color=TARGET_COLOURS.get(t), marker="o", markersize=3, label=t)
                   for t in targets]
        if len(groups) > 1:
            handles += [Line2D([], [], color="0.3", linestyle=GROUP_STYLES[g][0],
                               marker=GROUP_STYLES[g][1], markersize=3, label=g)
                        for g in groups]
        ncol = len(targets) if len(groups) == 1 else -(-len(handles) // 2)  # two rows
        fig.legend(handles=handles, loc="outside lower center", ncol=ncol,
                   fontsize="small", frameon=False, handlelength=1.8, columnspacing=1.0)
        if title:
            ax.set_title(title, fontsize="medium")
    return fig


def _rc():
    import matplotlib

    return matplotlib.rc_context({"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none",
                                  "font.size": 7, "axes.linewidth": 0.5, "lines.linewidth": 1.0,
                                  "savefig.dpi": 200})


def save_figure(fig, path: Path) -> None:
    with _rc():
        fig.savefig(path, metadata={"CreationDate": None} if path.suffix == ".pdf" else None)


# --- a corpus run ---------------------------------------------------------------------------------
def model_sites(spec: str) -> tuple[str, list[Site]]:
    """(model id, the model's sites); runs where the model is: a worker, or this process."""
    from ..models.pipeline import get_adapter

    adapter = get_adapter(spec)
    if not hasattr(adapter, "list_sites"):
        raise SteveError(f"{adapter.model_id} does not list activation sites")
    return adapter.model_id, list(adapter.list_sites())


def choose_sites(requested: Sequence[str] | None, available: Sequence[Site]) -> list[Site]:
    """The requested frames sites, or by default every ``residual`` frames site (one per layer)."""
    from ..models.sites import validate_sites

    if not requested:
        chosen = [s for s in available if s.axis == "frames" and s.kind == "residual"]
        if not chosen:
            raise SteveError("the model has no residual frames sites; give --sites")
        return chosen
    chosen = validate_sites(requested, available)
    tokens = [s.name for s in chosen if s.axis != "frames"]
    if tokens:
        raise SteveError(f"probes read frames sites (audio frames with phone labels); "
                         f"{', '.join(tokens)} {'is a tokens site' if len(tokens) == 1 else 'are tokens sites'}")
    return chosen


def site_entries(path: str, spec: str, sites: Sequence[str], audio, cache_dir=None):
    """Every window of every site for one file: site -> [actcache Entry per window], and the
    number of windows (extracted, cached). Windows missing from the cache are extracted once for
    all their missing sites (one encoder pass) and cached."""
    from . import actcache
    from ..fileio import sha256_file
    from ..models.pipeline import get_adapter, normalise_spec

    root = actcache.store_root(cache_dir)
    file_hash = sha256_file(path)
    out: dict[str, list] = {s: [] for s in sites}
    extracted = cached = 0
    window, num_windows = 0, 1
    while window < num_windows:
        keys = {s: actcache.activation_key(file_hash, spec, s, window) for s in sites}
        found = {s: actcache.load_entry(root, keys[s]) for s in sites}
        missing = [s for s in sites if found[s] is None]
        if missing:
            ex = get_adapter(spec).extract(audio.samples, components=(), window=window,
                                           sites=tuple(missing))
            attrs = {"spec": normalise_spec(spec), "window": window, "file_sha256": file_hash,
                     "num_windows": int(ex.num_windows), "num_samples": int(len(audio.samples)),
                     "grid": actcache.grid_attrs(ex.frame_grid), "format": actcache.FORMAT}
            for s in missing:
                acts = np.asarray(ex.activations[s])
                actcache.save_entry(root, keys[s], acts, dict(attrs, site=s))
                found[s] = actcache.Entry(acts.astype(np.float16), dict(attrs, site=s))
            extracted += 1
        else:
            cached += 1
        for s in sites:
            out[s].append(found[s])
        num_windows = found[sites[0]].num_windows
        window += 1
    return out, extracted, cached


@dataclass(frozen=True)
class ProbeTask:
    """task(path) -> ProbeFile; picklable, runs on a corpus-runner worker; never raises."""

    spec: str
    sites: tuple[str, ...]
    cache_dir: str | None = None
    phone_tier: str | None = None
    targets: tuple[str, ...] = TARGETS

    def __call__(self, path: str) -> ProbeFile:
        return never_raising(self._run, path, lambda p, why: ProbeFile(p, reason=why))

    def _run(self, path: str) -> ProbeFile:
        from .index import row_labels
        from ..models.pipeline import open_utterance

        utt = open_utterance(path, phone_tier=self.phone_tier)
        needs_phones = any(t in TARGETS for t in self.targets)
        if needs_phones and (utt.alignment is None or utt.alignment.phones is None):
            raise SteveError("no phone alignment beside it")
        entries, extracted, cached = site_entries(path, self.spec, self.sites, utt.audio,
                                                  self.cache_dir)
        acts = {s: np.concatenate([e.acts for e in entries[s]]).astype(np.float16)
                for s in self.sites}
        rows = {a.shape[0] for a in acts.values()}
        if len(rows) != 1:
            raise SteveError(f"sites disagree on the number of frames: {sorted(rows)}")
        if rows.pop() == 0:
            raise SteveError("no frames (the audio is empty)")
        phones, _ = row_labels(entries[self.sites[0]], utt.alignment)
        acoustic = {}
        wanted = [t for t in self.targets if t in REGRESSION_TARGETS]
        if wanted:
            from ..speech.acoustics import audio_tracks, sample_tracks

            times = np.concatenate([e.frame_times() for e in entries[self.sites[0]]])
            try:
                sampled = sample_tracks(audio_tracks(utt.audio), times)
            except SteveError:  # too short for Praat: no defined frames
                sampled = {m: np.full(times.shape, np.nan) for m in wanted}
            acoustic = {m: sampled[m] for m in wanted}
        return ProbeFile(path, True, "", acts, phones, len(entries[self.sites[0]]), extracted,
                         cached, acoustic=acoustic)


def files_csv(files: Sequence[str], results: dict[int, ProbeFile]) -> str:
    rows = []
    for i, name in enumerate(files):
        r = results.get(i) or ProbeFile(name, reason="not run")
        frames = next(iter(r.acts.values())).shape[0] if r.acts else 0
        rows.append([name, "ok" if r.ok else "failed", r.reason, frames, r.windows, r.extracted,
                     r.cached, f"{r.seconds:.3f}"])
    return csv_text(FILES_COLUMNS, rows)


def check_output(out: Path, force: bool) -> None:
    check_folder_writable(out, force, "the probe results")


def write_outputs(out: Path, rows: list[dict], files: list[str], results: dict[int, ProbeFile],
                  summary: str, title: str, force: bool) -> None:
    """probe.csv, files.csv, summary.txt, probe.pdf, probe.png into ``out`` (made aside, renamed)."""
    with atomic_folder(out, force, "the probe results") as tmp:
        (tmp / "probe.csv").write_text(probe_csv(rows), encoding="utf-8")
        (tmp / "files.csv").write_text(files_csv(files, results), encoding="utf-8")
        (tmp / "summary.txt").write_text(summary, encoding="utf-8")
        fig = probe_figure(rows, title)
        save_figure(fig, tmp / "probe.pdf")
        save_figure(fig, tmp / "probe.png")


def summary_text(meta: dict, rows: Sequence[dict], files: list[str],
                 results: dict[int, ProbeFile]) -> str:
    ok = sum(1 for r in results.values() if r.ok)
    lines = [f"model:   {meta['model']}", f"corpus:  {meta['corpus']}",
             f"files:   {len(files)} ({ok} used, {len(files) - ok} failed; see files.csv)",
             f"sites:   {', '.join(meta['sites'])}",
             f"probe:   StandardScaler + LogisticRegression(C={meta['C']}), GroupKFold by file, "
             f"{meta['folds']} folds; silence and unknown phones left out; phones normalised",
             f"         acoustic targets: StandardScaler + Ridge(alpha={meta.get('alpha', 1.0)}),"
             f" same folds; frames with the measure undefined left out",
             "", f"{'site':28s} {'target':9s} {'accuracy':>8s} {'majority':>8s} {'R²':>7s} "
             f"{'n':>7s}"]

    def num(x, width) -> str:
        return f"{x:{width}.3f}" if np.isfinite(x) else " " * (width - 1) + "-"

    for r in rows:
        lines.append(f"{r['site']:28s} {r['target']:9s} {num(r['accuracy'], 8)} "
                     f"{num(r['majority_baseline'], 8)} {num(r.get('r2', float('nan')), 7)} "
                     f"{r['n']:7d}")
    failed = [(files[i], r.reason) for i, r in sorted(results.items()) if not r.ok]
    if failed:
        lines += ["", "failed files:"] + [f"  {f}: {why}" for f, why in failed[:20]]
        if len(failed) > 20:
            lines.append(f"  ... and {len(failed) - 20} more (files.csv)")
    return "\n".join(lines) + "\n"


def run_probes(corpus: str | os.PathLike, out: str | os.PathLike, spec: str = "whisper",
               sites: Sequence[str] | None = None, folds: int = DEFAULT_FOLDS, c: float = 1.0,
               jobs: int | None = None, scheduler: str | None = None,
               cache_dir: str | os.PathLike | None = None, force: bool = False,
               phone_tier: str | None = None, timeout: float = 10.0, progress=None,
               fit_progress=None, targets: Sequence[str] = TARGETS,
               alpha: float = DEFAULT_ALPHA) -> list[dict]:
    """Probe every site over every audio file under ``corpus``; write ``out``; return the rows.

    ``progress(done, total, what)`` after each file, ``fit_progress`` after each probe."""
    from .corpus import find_audio_files
    from .runner import Runner
    from ..models.sites import parse_sites

    if folds < 2:
        raise SteveError(f"--folds must be at least 2, got {folds}")
    targets = tuple(dict.fromkeys(targets))
    unknown = [t for t in targets if t not in ALL_TARGETS]
    if unknown or not targets:
        raise SteveError(f"unknown probe target {', '.join(unknown) or '(none)'}; choose from "
                         f"{', '.join(ALL_TARGETS)}")
    root = Path(corpus).resolve()
    out = Path(out)
    check_output(out, force)
    paths = sorted(find_audio_files(root), key=lambda p: p.relative_to(root).as_posix())
    if not paths:
        raise SteveError("no audio files (WAV, FLAC, OGG, ...) in this folder tree", corpus)
    files = [p.relative_to(root).as_posix() for p in paths]
    requested = parse_sites(sites)
    with Runner(jobs, scheduler, timeout) as runner:
        model_id, available = runner.call(model_sites, spec)
        chosen = choose_sites(requested, available)
        task = ProbeTask(spec, tuple(s.name for s in chosen),
                         None if cache_dir is None else str(cache_dir), phone_tier, targets)
        results = dict(runner.map([str(p) for p in paths], task, progress))
    used = [results[i] for i in range(len(files)) if results[i].ok]
    if len(used) < 2:
        first = next((f"{files[i]}: {r.reason}" for i, r in sorted(results.items()) if not r.ok),
                     "")
        raise SteveError(f"probes need at least 2 files with activations and phone labels, got "
                         f"{len(used)} of {len(files)}" + (f" (first failure: {first})" if first
                                                          else ""), corpus)
    rows = probe_table(used, chosen, targets=targets, folds=folds, c=c, progress=fit_progress,
                       alpha=alpha)
    meta = {"model": model_id, "corpus": str(root), "sites": [s.name for s in chosen],
            "folds": folds, "C": c, "alpha": alpha}
    title = f"{model_id}: linear probes, {len(used)} files"
    write_outputs(out, rows, files, results, summary_text(meta, rows, files, results), title,
                  force)
    return rows
