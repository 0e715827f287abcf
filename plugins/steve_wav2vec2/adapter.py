"""The wav2vec 2.0 adapter: one forward pass over the whole utterance, encoder self-attention.

Model spec: ``wav2vec2:DIR`` (saved with ``save_pretrained``) or ``wav2vec2:HUB_ID``.

wav2vec 2.0 has no fixed window: the utterance is encoded in one piece, so there is one window and
the attention is T x T with ``T = floor((n - 400) / 320) + 1`` for the standard conv stack. That is
quadratic in the length; before running, the adapter estimates the memory it needs and refuses
(SteveError) above ``max_attention_bytes`` (default 2 GiB, or ``$STEVE_QT_MAX_ATTENTION_BYTES``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from steve_qt.core.models.adapters import Extraction, ProgressFn, CancelFn, Site, Transcript
from steve_qt.core.attention.maps import AttentionMaps
from steve_qt.core.models.buffers import BufferPool
from steve_qt.core.errors import Cancelled, SteveError
from steve_qt.core.frames import FrameGrid, conv_grid
from steve_qt.core.attention.measures import ONE_PASS, LayerProgress
from steve_qt.core.models.sites import SiteRecorder, validate_sites

from . import loading
from .capture import capture_in_attention
from .ctc import greedy_transcript

SAMPLE_RATE = 16000
DEFAULT_MAX_ATTENTION_BYTES = 2 * 1024**3
MAX_BYTES_ENV = "STEVE_QT_MAX_ATTENTION_BYTES"
NORM_EPS = 1e-7  # Wav2Vec2FeatureExtractor's variance epsilon
#: memory for the captured weights and scores, used again once a result is let go
RESULTS = BufferPool()


def validate_audio(audio: np.ndarray) -> np.ndarray:
    """Mono float samples (n,) -> float32 (n,); SteveError for anything else."""
    x = np.asarray(audio)
    if x.ndim != 1:
        raise SteveError(f"wav2vec2 needs mono audio of shape (n,), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise SteveError(f"wav2vec2 needs float samples in [-1, 1], got dtype {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x)):
        raise SteveError("audio contains NaN or infinite samples")
    return x


def normalize_waveform(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance (Wav2Vec2FeatureExtractor's do_normalize): (n,) -> (n,) float32."""
    x64 = x.astype(np.float64)
    return ((x64 - x64.mean()) / np.sqrt(x64.var() + NORM_EPS)).astype(np.float32)


def attention_bytes(num_layers: int, num_heads: int, num_frames: int) -> int:
    """Memory an extraction of T frames needs for attention.

    Stored: weights and scores, float16, (N, 1, M, T, T). Working set of one layer, float32:
    the scores and the softmax weights (M, T, T), which the capture holds as eager attention
    does.
    """
    square = num_heads * num_frames * num_frames
    return num_layers * square * 2 * 2 + 2 * square * 4


def format_bytes(n: int) -> str:
    return f"{n / 1024**3:.2f} GiB" if n >= 1024**3 else f"{n / 1024**2:.1f} MiB"


class Wav2Vec2Adapter:
    """Adapter for HF transformers wav2vec 2.0 models (``Wav2Vec2ForCTC`` or ``Wav2Vec2Model``)."""

    name = "wav2vec2"
    components: tuple[str, ...] = ("encoder",)
    #: context-mixing measures (steve_qt.core.attention.measures); grad needs a CTC head
    measures = ("norm", "value_zeroing", "grad")
    sample_rate = SAMPLE_RATE

    def __init__(self, arg: str | None = None, device: str = "cpu"):
        self.loaded = loading.load(arg)
        self.device = device  # "cpu" or "cuda[:N]" (steve_qt.core.models.devices.resolve)
        if device != "cpu":
            self.loaded.model.to(device)
        cfg = self.loaded.config
        if self.loaded.sample_rate != SAMPLE_RATE:
            raise SteveError(
                f"the model expects {self.loaded.sample_rate} Hz audio; "
                f"steve_qt feeds {SAMPLE_RATE} Hz",
                self.loaded.source,
            )
        label = Path(self.loaded.source).name if self.loaded.is_local else self.loaded.source
        self.model_id = f"wav2vec2:{label}"
        self.grid: FrameGrid = conv_grid(cfg.conv_kernel, cfg.conv_stride, SAMPLE_RATE)
        self.num_layers = int(cfg.num_hidden_layers)
        self.num_heads = int(cfg.num_attention_heads)
        #: refuse extractions needing more bytes than this; None -> $STEVE_QT_MAX_ATTENTION_BYTES
        #: or 2 GiB
        self.max_attention_bytes: int | None = None

    # --- protocol ---------------------------------------------------------------------------
    def num_windows(self, num_samples: int) -> int:
        return 1

    def module_name(self, module) -> str:
        """Path of a submodule in the loaded model (``wav2vec2.encoder.layers.0`` with a CTC head,
        ``encoder.layers.0`` without)."""
        if not hasattr(self, "_module_names"):
            self._module_names = {id(m): n for n, m in self.loaded.model.named_modules()}
        return self._module_names[id(module)]

    def list_sites(self) -> list[Site]:
        """Per encoder layer its output (the residual stream after the layer) and its
        feed-forward activation module (the neurons); for the pre-norm ("stable layer norm")
        variant also the encoder's final layer norm. All on the audio frame grid."""
        cfg = self.loaded.config
        out: list[Site] = []
        for n, layer in enumerate(self.loaded.encoder_layers):
            out.append(Site(self.module_name(layer), int(cfg.hidden_size), "frames", n, "residual"))
            act = layer.feed_forward.intermediate_act_fn
            out.append(Site(self.module_name(act), int(cfg.intermediate_size), "frames", n, "mlp"))
        if cfg.do_stable_layer_norm:  # post-norm models apply encoder.layer_norm *before* layer 0
            ln = self.loaded.base.encoder.layer_norm
            out.append(Site(self.module_name(ln), int(cfg.hidden_size), "frames", None, "ln_post"))
        return out

    def extract(
        self,
        audio: np.ndarray,
        components: Sequence[str] | None = None,
        window: int = 0,
        progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
        sites: Sequence[str] = (),
    ) -> Extraction:
        """Encoder attention (unless ``components=()``) and the activations of ``sites``, from one
        forward pass over the whole utterance; every site has one row per frame of the grid."""
        self.check_request(components, window)
        asked = validate_sites(sites, self.list_sites())
        capture = components is None or "encoder" in components
        x = validate_audio(audio)  # (n,)
        num_frames = self.frames_for(len(x))
        if capture:
            self.check_memory(num_frames)
        if should_cancel is not None and should_cancel():
            raise Cancelled()
        with SiteRecorder(self.loaded.model, [s.name for s in asked]) as rec:
            if capture:
                maps, logits = self.run(x, num_frames, progress, should_cancel)
            else:
                logits = self.forward(x)
        activations = rec.result()
        for name, a in activations.items():
            if a.shape[0] != num_frames:
                raise SteveError(f"site {name} gave {a.shape[0]} rows but the conv grid says "
                                 f"{num_frames} frames", self.loaded.source)
        transcript = self.transcribe(logits, num_frames)
        meta = {
            "model_path": self.loaded.source,
            "normalized": self.loaded.normalize,
            "ctc_head": self.loaded.has_ctc_head,
            "stable_layer_norm": bool(self.loaded.config.do_stable_layer_norm),
            "num_samples": len(x),
        }
        return Extraction({"encoder": maps} if capture else {}, transcript, self.model_id, 0, 1,
                          meta, activations=activations, frame_grid=self.grid)

    # --- context-mixing measures ------------------------------------------------------------
    def measure_unavailable(self, measure: str) -> str | None:
        """Why this model cannot give ``measure`` (None when it can)."""
        if measure not in self.measures:
            return "unknown measure"
        if measure == "grad" and not self.loaded.has_ctc_head:
            return ("it has no CTC head, so there is no transcript log-probability to "
                    "differentiate (load a Wav2Vec2ForCTC model)")
        return None

    def extract_measures(self, audio: np.ndarray, measures: Sequence[str], window: int = 0,
                         tokens=None, text_start=None, progress: ProgressFn | None = None,
                         should_cancel: CancelFn | None = None) -> dict[str, np.ndarray]:
        """Encoder context-mixing measures: name -> float16 (N, 1, M or 1, T, T)."""
        from . import mixing

        self.check_request(None, window)
        for m in measures:
            why = self.measure_unavailable(m)
            if why:
                raise SteveError(f"this model cannot give {m.replace('_', '-')}: {why}")
        x = validate_audio(audio)
        num_frames = self.frames_for(len(x))
        self.check_memory(num_frames)
        wanted = [m for m in self.measures if m in measures]
        steps = LayerProgress(self.num_layers, wanted, progress)
        inputs = self.input_values(x)
        out = {}
        if ONE_PASS & set(wanted):
            out.update(mixing.layer_measures(self.loaded, inputs, num_frames, wanted,
                                             steps.step("attention norm / value zeroing"),
                                             should_cancel))
        if "grad" in wanted:
            blank = self.loaded.config.pad_token_id
            out["grad"] = mixing.grad_relevance(self.loaded, inputs, num_frames,
                                                0 if blank is None else blank,
                                                steps.step("grad relevance"), should_cancel)
        return out

    # --- checks -----------------------------------------------------------------------------
    def check_request(self, components: Sequence[str] | None, window: int) -> None:
        unknown = [c for c in (components or ()) if c not in self.components]
        if unknown:
            raise SteveError(f"wav2vec2 has only encoder self-attention, not {', '.join(unknown)}")
        if window != 0:
            raise SteveError(f"wav2vec2 encodes the audio in one window; no window {window}")

    def frames_for(self, num_samples: int) -> int:
        num_frames = self.grid.frames_valid(num_samples)
        if num_frames < 1:
            ms = 1000 * self.grid.receptive_field / SAMPLE_RATE
            raise SteveError(f"audio is shorter than one wav2vec 2.0 frame ({ms:g} ms)")
        return num_frames

    def memory_limit(self) -> int:
        if self.max_attention_bytes is not None:
            return int(self.max_attention_bytes)
        raw = os.environ.get(MAX_BYTES_ENV, "").strip()
        if not raw:
            return DEFAULT_MAX_ATTENTION_BYTES
        try:
            return int(float(raw))
        except ValueError:
            raise SteveError(f"{MAX_BYTES_ENV}={raw!r} is not a number of bytes") from None

    def check_memory(self, num_frames: int) -> None:
        need = attention_bytes(self.num_layers, self.num_heads, num_frames)
        limit = self.memory_limit()
        if need > limit:
            seconds = num_frames * self.grid.hop / SAMPLE_RATE
            raise SteveError(
                f"wav2vec2 attention for {seconds:.1f} s ({num_frames} frames, {self.num_layers} "
                f"layers x {self.num_heads} heads) would need {need} bytes ({format_bytes(need)}), "
                f"more than the limit of {format_bytes(limit)}; select a shorter part of the audio "
                f"(or raise {MAX_BYTES_ENV})"
            )

    # --- the forward pass -------------------------------------------------------------------
    def input_values(self, x: np.ndarray):
        """(n,) float32 -> (1, n) torch input, normalised as the feature extractor says."""
        import torch

        values = normalize_waveform(x) if self.loaded.normalize else x
        return torch.from_numpy(values)[None].to(self.device)

    def forward(self, x: np.ndarray) -> np.ndarray | None:
        """The plain forward pass (no attention capture) -> CTC logits (T, V) or None."""
        import torch

        with torch.inference_mode():
            output = self.loaded.model(self.input_values(x))
        logits = getattr(output, "logits", None) if self.loaded.has_ctc_head else None
        return None if logits is None else logits[0].float().numpy()

    def run(
        self,
        x: np.ndarray,
        num_frames: int,
        progress: ProgressFn | None,
        should_cancel: CancelFn | None,
    ) -> tuple[AttentionMaps, np.ndarray | None]:
        """Forward pass with hooks -> (encoder AttentionMaps, CTC logits (T, V) or None)."""
        import torch

        shape = (self.num_layers, 1, self.num_heads, num_frames, num_frames)  # (N, 1, M, T, T)
        # From the pool: the memory of earlier results nobody holds any more, else new anonymous
        # memory. Not numpy's allocator: numpy asks for transparent huge pages on large arrays,
        # and fresh huge pages made the capture of 10 s up to 0.3 s slower here (zeroing and
        # compacting 2 MiB at a time on first touch).
        weights = RESULTS.empty(shape, np.float16)
        scores = RESULTS.empty(shape, np.float16)
        weights_t, scores_t = torch.from_numpy(weights), torch.from_numpy(scores)  # same memory
        scratch = None  # float32 (1, M, T, T) every layer computes its scores and weights in
        if self.device == "cpu":
            scratch = torch.from_numpy(RESULTS.empty((1, *shape[2:]), np.float32))
        done: list[int] = []

        def outputs(n: int):
            return scores_t[n, 0], weights_t[n, 0]

        def on_layer(n: int) -> None:
            done.append(n)
            if progress is not None:
                what = f"wav2vec2 encoder layer {n}"
                progress(n + 1, self.num_layers, what)

        def check_frames(_module, _inputs, q: torch.Tensor) -> None:
            if q.shape[1] != num_frames:
                raise SteveError(
                    f"model produced {q.shape[1]} frames but the conv grid says {num_frames}; "
                    "the config's conv_kernel/conv_stride do not describe this model",
                    self.loaded.source,
                )

        inputs = self.input_values(x)
        check = self.loaded.encoder_layers[0].attention.q_proj.register_forward_hook(check_frames)
        try:
            output = capture_in_attention(self.loaded.encoder_layers,
                                          lambda: self.loaded.model(inputs), outputs, on_layer,
                                          should_cancel, scratch)
        finally:
            check.remove()
        if done != list(range(self.num_layers)):
            raise SteveError(f"captured layers {done}, expected {self.num_layers} layers")
        maps = AttentionMaps(
            weights=weights,
            scores=scores,
            padding_mass=np.zeros((self.num_layers, self.num_heads, num_frames), np.float32),
            component="encoder",
            model=self.model_id,
            sample_rate=SAMPLE_RATE,
            num_samples=len(x),
            query_grid=self.grid,
            key_grid=self.grid,
        )
        logits = getattr(output, "logits", None) if self.loaded.has_ctc_head else None
        return maps, None if logits is None else logits[0].float().cpu().numpy()

    def transcribe(self, logits: np.ndarray | None, num_frames: int) -> Transcript:
        if logits is None or logits.shape[0] != num_frames:
            return Transcript()
        blank = self.loaded.config.pad_token_id
        blank = 0 if blank is None else blank
        return greedy_transcript(logits, self.loaded.tokenizer, blank, self.grid)
