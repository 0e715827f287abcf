"""A torch-free preview of the embedded model's encoder attention (numpy float32).

On a cold start ``import torch`` alone takes 1.4-1.9 s, so the first map cannot wait for it. The
encoder of tiny.en is small enough to run in numpy from the converted state dict that
``statecache`` keeps in the user cache; this module does so without importing torch or
whisper, and gives what the adapter's first progressive stage gives (``WhisperAdapter.extract``'s
first ``on_partial``): the encoder maps of the kept frames. The GUI shows them while torch and
the model load, and replaces them with the adapter's own numbers when those arrive; the
document, and so every export, ends up holding the adapter's numbers.

The computation follows openai-whisper's ``audio.log_mel_spectrogram`` and ``model.AudioEncoder``:

    mel      = log-mel of the window, as ``WhisperAdapter.mel`` feeds it     (80, 3000)
    x        = gelu(conv2(gelu(conv1(mel)))).T + positional_embedding       (1500, 384)
    block l  : x += attn(attn_ln(x)); x += mlp(mlp_ln(x))                   (1500, 384)
    attn     : scores = q_h . k_h^T / sqrt(d_head)                          (M, 1500, 1500)
               weights = softmax(scores) over all 1500 keys

and keeps the T = ceil(samples / 320) first query rows and keys of every layer's weights and
scores (float16) and, per kept row, the softmax mass on the cropped keys. The last block's
attention output and MLP are not needed, nor the final layer norm. GELU uses an erf of
Abramowitz & Stegun (7.1.26, absolute error below 1.5e-7), so neither scipy (0.65 s to import)
nor torch is needed.

Speed: the element-wise passes (GELU, softmax) run on cache-sized blocks (the softmax per block
of 128 query rows against all 1500 keys, normalised after the product with the values), and
numpy's BLAS runs on one thread. Side by side in one process (load 4 on 2 cores), the preview's
encoder took 437 ms against 362 ms for torch's bare encoder forward on one thread.

``preview_extraction`` returns None (no preview) when the converted cache file does not exist
yet (the first start ever: the torch loader writes it) or the model files are not the embedded
ones. It never writes anything.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Callable

import numpy as np

from steve_qt.core.models.adapters import Extraction, Transcript
from steve_qt.core.attention.maps import AttentionMaps
from steve_qt.core.errors import Cancelled
from steve_qt.core.models.previews import PREVIEW_META
from steve_qt.core.frames import WHISPER_WINDOW_SAMPLES, whisper_grid

from . import modelfiles

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
N_FRAMES = 3000  # mel frames of one 30 s window
PREVIEW_KEY = PREVIEW_META  # ``meta`` key marking a preview extraction
PREVIEW_WHAT = "numpy float32 encoder (steve_whisper.preview); the model's own numbers follow"


# --- log-mel, as whisper.audio.log_mel_spectrogram + WhisperAdapter.mel ---------------------------
def mel_filters_path() -> Path:
    """openai-whisper's ``assets/mel_filters.npz``, found without importing whisper."""
    spec = importlib.util.find_spec("whisper")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("openai-whisper is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "assets" / "mel_filters.npz"


def mel_filters(n_mels: int) -> np.ndarray:
    """(n_mels, 201) float32 mel filterbank (whisper's own)."""
    with np.load(mel_filters_path(), allow_pickle=False) as f:
        return f[f"mel_{n_mels}"].astype(np.float32)


def hann(n: int = N_FFT) -> np.ndarray:
    """Periodic Hann window (torch.hann_window's default)."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


def power_frames(segment: np.ndarray, num_frames: int) -> np.ndarray:
    """|STFT|^2 (num_frames, 201) float32 of the first ``num_frames`` frames of ``segment``
    followed by 30 s of zeros, frames centred on multiples of HOP with reflect padding
    (torch.stft's ``center=True``)."""
    half = N_FFT // 2
    need = (num_frames - 1) * HOP + N_FFT  # samples of the centred signal these frames read
    sig = np.zeros(need, np.float32)  # the padded signal's zeros stay zeros
    body = segment[:need - half]
    sig[half:half + len(body)] = body
    head = np.zeros(half + 1, np.float32)  # reflect padding: x[200], x[199], ..., x[1]
    head[:min(len(segment), half + 1)] = segment[:half + 1]
    sig[:half] = head[half:0:-1]
    frames = np.lib.stride_tricks.sliding_window_view(sig, N_FFT)[::HOP][:num_frames]
    spec = np.fft.rfft(frames * hann(), axis=-1)  # (F, 201) complex64
    return (spec.real ** 2 + spec.imag ** 2).astype(np.float32)


def log_mel(segment: np.ndarray, n_mels: int = 80) -> np.ndarray:
    """(n_mels, 3000) float32: the encoder input of one window, as ``WhisperAdapter.mel``.

    whisper takes the log-mel of the audio plus 30 s of zeros; its maximum (for the 8-decade
    floor) is over all frames of that, the frames of pure zeros giving log10(1e-10) = -10. The
    adapter keeps the first ``len // 160`` frames and pads them with zeros to 3000."""
    segment = np.asarray(segment, np.float32)[:WHISPER_WINDOW_SAMPLES]
    content = len(segment) // HOP
    all_frames = (len(segment) + WHISPER_WINDOW_SAMPLES) // HOP  # whisper drops the last frame
    # frames reaching into the audio (frame j spans samples [160 j - 200, 160 j + 200))
    audible = min(all_frames, (len(segment) + N_FFT // 2) // HOP + 1)
    power = power_frames(segment, max(audible, content))  # (F, 201)
    mel = mel_filters(n_mels) @ power.T  # (n_mels, F)
    log_spec = np.log10(np.maximum(mel, 1e-10))
    top = log_spec.max() if log_spec.size else -10.0
    if all_frames > audible:
        top = max(top, np.float32(-10.0))
    log_spec = np.maximum(log_spec[:, :content], top - 8.0)
    out = np.zeros((n_mels, N_FRAMES), np.float32)
    out[:, :content] = (log_spec + 4.0) / 4.0
    return out


# --- weights --------------------------------------------------------------------------------------
def read_encoder(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(dims, {name: float32 array}) of the ``encoder.*`` tensors of a converted state dict."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as fh:
        meta = fh.metadata() or {}
        if meta.get("format") != modelfiles.FORMAT:
            raise ValueError(f"{path} is not a converted state dict")
        dims = json.loads(meta["dims"])
        state = {k: fh.get_tensor(k) for k in fh.keys() if k.startswith("encoder.")}
    if any(v.dtype != np.float32 for v in state.values()):
        raise ValueError(f"{path} holds tensors that are not float32")
    return dims, state


def embedded_cache_file() -> Path | None:
    """The converted embedded model in the user cache, when it exists and the installed
    ``model.bin`` is the embedded one (by its remembered SHA-256, hashed when not remembered)."""
    folder = modelfiles.embedded_model_dir()
    bin_path = folder / "model.bin"
    if not bin_path.exists():
        return None
    if modelfiles.file_sha256(bin_path) != modelfiles.EMBEDDED_SHA256:
        return None
    path = modelfiles.state_path(modelfiles.EMBEDDED_SHA256)
    return path if path.exists() else None


def alignment_heads(folder: Path) -> list[list[int]]:
    return [list(map(int, h)) for h in json.loads((folder / "config.json").read_text())
            ["alignment_heads"]]


# --- the encoder ----------------------------------------------------------------------------------
_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
_P = 0.3275911


#: elements per block of the element-wise passes (GELU, softmax): the block stays in the L2
#: cache through the ~20 passes instead of streaming 9 MB arrays through memory each time
BLOCK = 1 << 15
#: query rows per block of the attention (scores, softmax and weighted sum of one block)
ATTENTION_ROWS = 128


def _gelu_block(x: np.ndarray, z: np.ndarray, t: np.ndarray, poly: np.ndarray) -> None:
    """x * Phi(x) in place on a small 1-d block; z, t, poly: scratch of the same size."""
    np.abs(x, out=z)
    z *= np.float32(1 / math.sqrt(2))  # |x| / sqrt 2
    np.multiply(z, np.float32(_P), out=t)
    t += 1
    np.reciprocal(t, out=t)
    np.multiply(t, np.float32(_A[4]), out=poly)
    for a in _A[3::-1]:
        poly += np.float32(a)
        poly *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z  # 1 - erf(|x| / sqrt 2)
    poly *= np.float32(0.5)  # Phi(-|x|)
    # Phi(x) = 1 - Phi(-|x|) for x >= 0
    np.subtract(1, poly, out=poly, where=x >= 0)
    x *= poly


def gelu_(x: np.ndarray) -> np.ndarray:
    """x * Phi(x) in place (exact GELU, erf after Abramowitz & Stegun 7.1.26), float32,
    C-contiguous ``x``; computed in cache-sized blocks."""
    flat = x.reshape(-1)
    scratch = np.empty((3, BLOCK), np.float32)
    for start in range(0, flat.size, BLOCK):
        blk = flat[start:start + BLOCK]
        n = blk.size
        _gelu_block(blk, scratch[0, :n], scratch[1, :n], scratch[2, :n])
    return x


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    xc = x - mean
    var = np.einsum("ij,ij->i", xc, xc)[:, None] / np.float32(x.shape[-1])
    xc *= 1 / np.sqrt(var + np.float32(eps))
    xc *= w
    xc += b
    return xc


def conv1d(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int) -> np.ndarray:
    """(C_in, L) * (C_out, C_in, 3) with padding 1 -> (C_out, L // stride)."""
    c_in, length = x.shape
    out_len = (length + 2 - 3) // stride + 1
    xp = np.zeros((c_in, length + 2), np.float32)
    xp[:, 1:-1] = x
    cols = np.empty((3, c_in, out_len), np.float32)  # (tap, C_in, L_out)
    for tap in range(3):
        cols[tap] = xp[:, tap:tap + stride * (out_len - 1) + 1:stride]
    wk = np.ascontiguousarray(w.transpose(0, 2, 1)).reshape(w.shape[0], -1)  # (C_out, 3*C_in)
    out = wk @ cols.reshape(-1, out_len)
    out += b[:, None]
    return out


def attention(x: np.ndarray, p: dict, prefix: str, n_head: int, keep: int, layer_out,
              need_output: bool) -> np.ndarray | None:
    """One self-attention of ``x`` (1500, D): stores the kept rows' weights/scores in
    ``layer_out`` = (weights (M, T, T) f16, scores (M, T, T) f16, padding (M, T) f32) and returns
    the attention output (1500, D) (None when not ``need_output``)."""
    n, d_model = x.shape
    d = d_model // n_head
    scale = np.float32(d ** -0.5)
    q = x @ p[prefix + "query.weight"].T
    q += p[prefix + "query.bias"]
    k = x @ p[prefix + "key.weight"].T
    rows = n if need_output else keep
    qh = np.ascontiguousarray((q[:rows] * scale).reshape(rows, n_head, d).transpose(1, 0, 2))
    kt = np.ascontiguousarray(k.reshape(n, n_head, d).transpose(1, 2, 0))  # (M, d, 1500)
    weights, scores, padding = layer_out
    if need_output:
        v = x @ p[prefix + "value.weight"].T
        v += p[prefix + "value.bias"]
        vh = np.ascontiguousarray(v.reshape(n, n_head, d).transpose(1, 0, 2))  # (M, 1500, d)
        out = np.empty((n, n_head, d), np.float32)
    step = ATTENTION_ROWS  # query rows per block
    buf = np.empty((step, n), np.float32)
    for h in range(n_head):
        for r0 in range(0, rows, step):
            r1 = min(rows, r0 + step)
            s = buf[:r1 - r0]
            np.matmul(qh[h, r0:r1], kt[h], out=s)  # (rows, 1500) scaled scores
            kr = min(r1, keep)  # kept query rows in this block: r0..kr
            if kr > r0:
                scores[h, r0:kr] = s[:kr - r0, :keep]
            s -= s.max(axis=1, keepdims=True)
            np.exp(s, out=s)
            total = s.sum(axis=1)  # (rows,)
            if kr > r0:
                kept = s[:kr - r0, :keep] / total[:kr - r0, None]
                weights[h, r0:kr] = kept
                padding[h, r0:kr] = np.maximum(1.0 - kept.sum(axis=1), 0.0)
            if need_output:
                o = s @ vh[h]  # (rows, d)
                o /= total[:, None]
                out[r0:r1, h] = o
    if not need_output:
        return None
    o = out.reshape(n, d_model) @ p[prefix + "out.weight"].T
    o += p[prefix + "out.bias"]
    return o


def encoder_attention(mel: np.ndarray, p: dict[str, np.ndarray], n_head: int, keep: int,
                      should_cancel: Callable[[], bool] | None = None):
    """(weights (N, 1, M, T, T) f16, scores (N, 1, M, T, T) f16, padding (N, M, T) f32) of the
    encoder for ``mel`` (n_mels, 3000) and the state dict tensors ``p`` (``encoder.*``)."""
    n_layer = 1 + max(int(k.split(".")[2]) for k in p if k.startswith("encoder.blocks."))
    weights = np.empty((n_layer, 1, n_head, keep, keep), np.float16)
    scores = np.empty_like(weights)
    padding = np.empty((n_layer, n_head, keep), np.float32)

    def check() -> None:
        if should_cancel is not None and should_cancel():
            raise Cancelled()

    x = gelu_(conv1d(mel, p["encoder.conv1.weight"], p["encoder.conv1.bias"], 1))
    x = gelu_(conv1d(x, p["encoder.conv2.weight"], p["encoder.conv2.bias"], 2))
    x = np.ascontiguousarray(x.T)  # (1500, D)
    x += p["encoder.positional_embedding"][:x.shape[0]]
    for i in range(n_layer):
        check()
        b = f"encoder.blocks.{i}."
        last = i == n_layer - 1
        h = layer_norm(x, p[b + "attn_ln.weight"], p[b + "attn_ln.bias"])
        o = attention(h, p, b + "attn.", n_head, keep, (weights[i, 0], scores[i, 0], padding[i]),
                      need_output=not last)
        if last:
            break
        x += o
        h = layer_norm(x, p[b + "mlp_ln.weight"], p[b + "mlp_ln.bias"])
        h = gelu_(h @ p[b + "mlp.0.weight"].T + p[b + "mlp.0.bias"])
        h = h @ p[b + "mlp.2.weight"].T
        h += p[b + "mlp.2.bias"]
        x += h
    check()
    return weights, scores, padding


def one_blas_thread():
    """numpy's BLAS on one thread while the preview runs. It runs beside the GUI thread building
    the window, on a machine of 2 cores: OpenBLAS with 2 threads then waits for busy cores
    (measured 4x slower per matrix product under load), with 1 it does not."""
    from contextlib import nullcontext

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return nullcontext()
    return threadpool_limits(1, user_api="blas")


# --- the first stage, as the adapter hands it over ------------------------------------------------
def preview_extraction(audio: np.ndarray, window: int = 0,
                       should_cancel: Callable[[], bool] | None = None) -> Extraction | None:
    """The embedded model's encoder maps of ``audio``'s window ``window``, shaped as the Whisper
    adapter's first partial result, marked ``meta["preview"]`` and with ``pending`` starting
    with "model" (the model's own numbers are still coming); None when the converted model is
    not in the user cache yet."""
    path = embedded_cache_file()
    if path is None:
        return None
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    n_win = max(1, math.ceil(len(audio) / WHISPER_WINDOW_SAMPLES))
    if audio.ndim != 1 or audio.size == 0 or not 0 <= window < n_win:
        return None
    segment = audio[window * WHISPER_WINDOW_SAMPLES:(window + 1) * WHISPER_WINDOW_SAMPLES]
    dims, state = read_encoder(path)
    grid = whisper_grid(window)
    keep = grid.frames_covering(len(segment))
    mel = log_mel(segment, dims["n_mels"])
    with one_blas_thread():
        w, s, pad = encoder_attention(mel, state, dims["n_audio_head"], keep, should_cancel)
    common = dict(model=modelfiles.EMBEDDED_ID, sample_rate=SAMPLE_RATE,
                  num_samples=len(segment), window=window, num_windows=n_win)
    maps = {"encoder": AttentionMaps(w, s, pad, "encoder", query_grid=grid, key_grid=grid,
                                     **common)}
    meta = {"alignment_heads": alignment_heads(modelfiles.embedded_model_dir()),
            "num_samples": len(segment), PREVIEW_KEY: PREVIEW_WHAT}
    return Extraction(maps=maps, transcript=Transcript(), model=modelfiles.EMBEDDED_ID,
                      window=window, num_windows=n_win, meta=meta,
                      pending=("model", "transcript", "cross", "decoder"), frame_grid=grid)


def is_preview(ex) -> bool:
    """Whether an Extraction is a preview (not the model's own numbers)."""
    return PREVIEW_KEY in (getattr(ex, "meta", None) or {})


def preview_for(arg: str | None):
    """``preview_extraction`` when ``arg`` (the model spec after ``whisper:``) names the
    embedded model and its converted weights are in the user cache; else None."""
    if arg not in (None, "", "embedded") or embedded_cache_file() is None:
        return None
    return preview_extraction
