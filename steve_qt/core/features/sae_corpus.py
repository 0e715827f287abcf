"""An SAE's corpus: which files, which site, held-out split, the activation cache, and the
transcript test (Whisper transcribes with the site's activations replaced by the SAE's
reconstruction; WER against the unedited transcript).

The rows come from the activation cache (:mod:`steve_qt.core.features.actcache`); files whose activations
are not cached yet are run through the model first, on the corpus runner (embedded Dask cluster
or ``--scheduler``), exactly as ``steve-qt features index`` fills the cache.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SteveError


@dataclass
class SaeCorpus:
    root: Path  # corpus root (absolute)
    files: list[Path]  # audio files, sorted by relative path
    spec: str  # normalised model spec
    site: str
    index: Path | None = None  # the feature index it came from, if any


def resolve_corpus(corpus_or_index: str | os.PathLike, site: str | None,
                   spec: str | None, need_site: bool = True) -> SaeCorpus:
    """A corpus folder, or a feature index folder (its index.json names corpus, model, site)."""
    from .corpus import find_audio_files
    from ..models.pipeline import normalise_spec

    p = Path(corpus_or_index)
    if not p.is_dir():
        raise SteveError("no such folder" if not p.exists() else "is not a folder", p)
    index = None
    if (p / "index.json").is_file():
        try:
            meta = json.loads((p / "index.json").read_text(encoding="utf-8"))
            root, idx_spec, idx_site = Path(meta["corpus"]), meta["model"], meta["site"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SteveError(f"cannot read the feature index's index.json ({exc})", p) from exc
        if spec and normalise_spec(spec) != normalise_spec(idx_spec):
            raise SteveError(f"the index was built with {idx_spec}, not {spec}", p)
        if site and site != idx_site:
            raise SteveError(f"the index is of site {idx_site}, not {site}", p)
        site, spec, index = idx_site, idx_spec, p
        if not root.is_dir():
            raise SteveError(f"the index's corpus {root} is gone (moved?)", p)
    else:
        root = p
    if not site and need_site:
        raise SteveError("give --site (see `steve-qt sites`)")
    root = root.resolve()
    files = sorted(find_audio_files(root), key=lambda f: f.relative_to(root).as_posix())
    if not files:
        raise SteveError("no audio files (WAV, FLAC, OGG, ...) in this folder tree", root)
    return SaeCorpus(root, files, normalise_spec(spec), site, index)


def split_holdout(files: list, fraction: float, seed: int) -> tuple[list, list]:
    """(train, held out): a seeded random ``fraction`` of the files (at least one when there
    are two or more files; none for a single file)."""
    if not 0 <= fraction < 1:
        raise SteveError(f"--holdout must be at least 0 and below 1, not {fraction}")
    n = len(files)
    k = 0 if n < 2 or fraction == 0 else min(n - 1, max(1, round(fraction * n)))
    order = np.random.default_rng(seed).permutation(n)
    held = set(order[:k].tolist())
    return ([f for i, f in enumerate(files) if i not in held],
            [f for i, f in enumerate(files) if i in held])


@dataclass(frozen=True)
class CacheTask:
    """task(path) -> (rows, dim, reason): fill the activation cache of every site for one file
    (one forward pass per window for the sites not cached yet; picklable)."""

    spec: str
    sites: tuple
    cache_dir: str | None = None

    def __call__(self, path: str):
        from .actcache import file_activations_sites

        try:
            fa = file_activations_sites(path, self.spec, list(self.sites), self.cache_dir)
            acts = fa[self.sites[0]].entries
            rows = sum(e.acts.shape[0] for e in acts)
            return rows, int(acts[0].acts.shape[1]) if acts else 0, ""
        except SteveError as exc:
            return 0, 0, exc.problem
        except Exception as exc:  # a model failure on one file: report it, go on
            return 0, 0, f"{type(exc).__name__}: {exc}"


def site_info(spec: str, site: str):
    """The model's Site named ``site`` (SteveError listing the valid ones)."""
    return sites_info(spec, [site])[0]


def sites_info(spec: str, sites) -> list:
    """The model's Sites named ``sites``: SteveError for a site given twice or one that is not
    a site of this model (listing the valid ones)."""
    from ..models.pipeline import get_adapter
    from ..models.sites import validate_sites

    sites = list(sites)
    twice = sorted({s for s in sites if sites.count(s) > 1})
    if twice:
        raise SteveError(f"site {twice[0]} is given twice")
    try:
        return validate_sites(sites, get_adapter(spec).list_sites())
    except SteveError as exc:
        raise SteveError(f"{exc.problem} (every --site must be a site of the one model, "
                         f"{spec})") from None


def fill_cache(files: list, spec: str, sites, cache_dir=None, jobs=None, scheduler=None,
               timeout: float = 10.0, progress=None) -> tuple[list, dict]:
    """Run the model over the files not cached yet for every site (one forward pass per file
    for all of them); (files with rows, {file: failure reason})."""
    from .actcache import file_entries
    from .runner import Runner

    sites = (sites,) if isinstance(sites, str) else tuple(sites)
    cd = None if cache_dir is None else str(cache_dir)
    todo = [f for f in files if any(file_entries(f, spec, s, cd) is None for s in sites)]
    failed: dict = {}
    if todo:
        with Runner(jobs, scheduler, timeout) as runner:
            for i, (rows, _, reason) in runner.map([str(f) for f in todo],
                                                   CacheTask(spec, sites, cd), progress):
                if reason or not rows:
                    failed[todo[i]] = reason or "no rows"
    return [f for f in files if f not in failed], failed


def sites_source(files: list, spec: str, cache_dir=None):
    """SiteSource for the trainer: each file's cached rows of the sites asked, files in the
    given order (each file read once per epoch, its hash computed once)."""
    from .actcache import file_rows

    cd = None if cache_dir is None else str(cache_dir)

    def rows(epoch: int, first: int, sites):
        for i in range(first, len(files)):
            try:
                yield i, file_rows(files[i], spec, list(sites), cd)
            except FileNotFoundError as exc:  # the cache was cleared (or a file changed)
                raise SteveError(f"{exc}; run the command again to recompute it") from exc

    return rows


def rows_source(files: list, spec: str, site: str, cache_dir=None):
    """BatchSource of one site: each file's cached rows in order, every epoch."""
    src = sites_source(files, spec, cache_dir)
    return lambda epoch: (by_site[site] for _, by_site in src(epoch, 0, [site]))


def data_id(files: list, root) -> str:
    """A name for the training data: SHA-256 of the files' paths relative to the corpus root
    and their sizes and modification times (a checkpoint continues only on the same)."""
    import hashlib

    h = hashlib.sha256()
    for f in files:
        st = Path(f).stat()
        h.update(f"{Path(f).relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n"
                 .encode())
    return h.hexdigest()


# --- the transcript with the SAE's reconstruction --------------------------------------------
def reconstruction_edit(sae, keep_frames: int | None):
    """f(output) replacing a site's output by the SAE's reconstruction (the first
    ``keep_frames`` rows of an encoder site: the frames that cover the audio; every row of a
    tokens site)."""
    import torch

    def edit(output: torch.Tensor) -> torch.Tensor:
        out = output.clone()
        rows = out.shape[1] if keep_frames is None else min(keep_frames, out.shape[1])
        with torch.no_grad():
            x = out[0, :rows].float()
            out[0, :rows] = sae.reconstruct(x).to(out.dtype)
        return out

    return edit


def reconstruction_wer(sae, files: list, spec: str, site_axis: str, site: str) -> dict:
    """Per file: the transcript as is, with the SAE's reconstruction in place of the site, and
    the WER of the second against the first; the mean over files."""
    from ..speech.audio import load_audio
    from ..models.pipeline import get_adapter
    from ..speech.textdiff import wer

    adapter = get_adapter(spec)
    if not hasattr(adapter, "transcribe"):
        raise SteveError(f"{adapter.model_id} cannot transcribe with edits (Whisper only)")
    rows = []
    for f in files:
        audio = load_audio(f)
        samples = audio.samples[:480000]
        keep = math.ceil(len(samples) / 320) if site_axis == "frames" else None
        plain = adapter.transcribe(samples).text
        edited = adapter.transcribe(samples, edits={site: reconstruction_edit(sae, keep)}).text
        rows.append({"file": str(f), "original": plain, "reconstructed": edited,
                     "wer": wer(plain, edited)})
    mean = float(np.mean([r["wer"] for r in rows])) if rows else float("nan")
    return {"files": rows, "mean_wer": mean}
