"""WhisperAdapter: encoder self-attention, decoder cross- and self-attention, transcript."""

from __future__ import annotations

import math
import time
from contextlib import ExitStack
from typing import Mapping, Sequence

import numpy as np
import torch
import whisper
from whisper.audio import HOP_LENGTH, N_FFT, N_FRAMES, N_SAMPLES, log_mel_spectrogram, pad_or_trim
from whisper.tokenizer import get_tokenizer

from steve_qt.core.models.adapters import (CancelFn, Extraction, PartialFn, ProgressFn, Site, Transcript,
                                   Word)
from steve_qt.core.attention.maps import AttentionMaps
from steve_qt.core.errors import Cancelled, SteveError
from steve_qt.core.frames import WHISPER_WINDOW_SAMPLES, whisper_grid
from steve_qt.core.attention.measures import ONE_PASS, LayerProgress
from steve_qt.core.models.sites import SiteRecorder, validate_sites

from . import dtw, loading, mixing
from .capture import QKCapture, cancel_hook
from .edits import EditFn, edit_hooks
from .encoded import EncodedWindow, decoder_pass
from .interventions import InterventionsMixin

assert N_SAMPLES == WHISPER_WINDOW_SAMPLES and N_FRAMES == 3000
dtw.install()  # whisper's word-timing DTW without numba's compilation, the same path
#: zeros appended before the log-mel (``WhisperAdapter.mel``): the last frame that reaches into the
#: audio ends n_fft - 1 samples after it, and the reflected edge must mirror zeros only
MEL_TAIL = 2 * N_FFT


class WhisperAdapter(InterventionsMixin):
    """openai-whisper model behind the steve_qt Adapter protocol.

    ``WhisperAdapter(None)`` loads the embedded tiny.en; ``WhisperAdapter("base")`` an
    openai-whisper name (needs a network the first time); ``WhisperAdapter("/x/model.pt")`` a local
    checkpoint.
    """

    name = "whisper"
    components = ("encoder", "cross", "decoder")
    #: context-mixing measures of the encoder (steve_qt.core.attention.measures)
    measures = ("norm", "value_zeroing", "grad")
    sample_rate = 16000

    @staticmethod
    def align_words(maps: AttentionMaps, tokens: Sequence[int]):
        """Word timings from cross-attention maps, as whisper.timing computes them
        (:func:`steve_whisper.align.align_words`); core reaches it by the maps' model name."""
        from .align import align_words

        return align_words(maps, tokens)

    def __init__(self, arg: str | None = None, device: str = "cpu"):
        loaded = loading.load(arg)
        self.device = device  # "cpu" or "cuda[:N]" (steve_qt.core.models.devices.resolve)
        self.model = loaded.model if device == "cpu" else loaded.model.to(device)
        self.model_id = loaded.model_id
        self.alignment_heads = loaded.alignment_heads
        self.dims = self.model.dims

    # ------------------------------------------------------------------------------------------
    def num_windows(self, num_samples: int) -> int:
        return max(1, math.ceil(num_samples / WHISPER_WINDOW_SAMPLES))

    def window_audio(self, audio: np.ndarray, window: int) -> np.ndarray:
        n = self.num_windows(len(audio))
        if not 0 <= window < n:
            raise SteveError(f"window {window} does not exist: the audio has {n} window(s) of 30 s "
                             f"(numbered 0 to {n - 1})")
        return audio[window * WHISPER_WINDOW_SAMPLES:(window + 1) * WHISPER_WINDOW_SAMPLES]

    def mel(self, segment: np.ndarray) -> torch.Tensor:
        """(n_mels, 3000) log-mel of one window, exactly as ``whisper.transcribe`` feeds it.

        transcribe takes the log-mel of the audio plus 30 s of zeros (normalised together), keeps
        the frames that hold audio and pads them with zeros *in the mel domain* to 3000 frames
        (``pad_or_trim``). The encoder therefore sees 0 in the padding, not the log-mel of
        silence; the maps must come from that same input.

        Only ``MEL_TAIL`` zeros are appended instead of 30 s (a tenth of the work for a 3 s
        file), with the same result bit for bit: the kept frames (``len // 160``) and the frames
        that reach into the audio are computed from the same samples, and every frame further out
        is all zeros in both, its log clamped to -10, which cannot raise the maximum the
        normalisation takes (every value is at least -10). A test compares it with the 30 s
        padding.
        """
        mel = log_mel_spectrogram(torch.from_numpy(segment), self.dims.n_mels, padding=MEL_TAIL)
        content_frames = len(segment) // HOP_LENGTH
        return pad_or_trim(mel[:, :content_frames], N_FRAMES)

    def list_sites(self) -> list[Site]:
        """Module paths of the openai-whisper model: per block its output (the residual stream)
        and its MLP's GELU output (the neurons), then the final layer norm; encoder sites are
        rows of audio frames, decoder sites rows of the teacher-forced tokens."""
        out: list[Site] = []
        for part, axis, ln in (("encoder", "frames", "ln_post"), ("decoder", "tokens", "ln")):
            stack = getattr(self.model, part)
            for layer, block in enumerate(stack.blocks):
                width = block.mlp[0].out_features
                out.append(Site(f"{part}.blocks.{layer}", block.attn_ln.normalized_shape[0], axis,
                                layer, "residual"))
                out.append(Site(f"{part}.blocks.{layer}.mlp.1", width, axis, layer, "mlp"))
            out.append(Site(f"{part}.{ln}", getattr(stack, ln).normalized_shape[0], axis, None,
                            "ln_post"))
        return out

    # ------------------------------------------------------------------------------------------
    def extract(self, audio: np.ndarray, components: Sequence[str] | None = None, window: int = 0,
                progress: ProgressFn | None = None,
                should_cancel: CancelFn | None = None, sites: Sequence[str] = (),
                on_partial: PartialFn | None = None) -> Extraction:
        """Attention of ``components`` (default all; ``()`` none) and activations of ``sites``.

        Frames sites are read in the encoder pass that captures the encoder attention, cropped to
        the same ``ceil(samples / 320)`` frames; tokens sites in the teacher-forced decoder pass
        that captures cross-attention. The window is transcribed only when something needs the
        transcript: cross/decoder attention, a tokens site, or a plain attention request without
        sites (whose Extraction has always carried the transcript). Frames sites alone (with or
        without encoder attention) run the encoder once and nothing else.

        The encoder runs once: the transcript (``whisper.transcribe`` with word timestamps) is
        decoded from the encoder output of the capture pass, and the teacher-forced pass that gives
        the word timings also captures the cross- and decoder attention and the tokens sites
        (``encoded.EncodedWindow``).

        ``on_partial`` (see the Adapter protocol) gets the encoder maps and frames sites as soon
        as the encoder has run, then the transcript too, before the cross- and decoder maps.
        """
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise SteveError(f"Whisper needs mono audio, got shape {audio.shape}")
        if audio.size == 0:
            raise SteveError("no audio samples to analyse")
        wanted = self.components if components is None else tuple(components)
        for c in wanted:
            if c not in self.components:
                raise SteveError(f"Whisper has no component {c!r} (it has {', '.join(self.components)})")
        asked = validate_sites(sites, self.list_sites())
        frame_sites = [s.name for s in asked if s.axis == "frames"]
        token_sites = [s.name for s in asked if s.axis == "tokens"]
        run_decoder = bool({"cross", "decoder"} & set(wanted)) or bool(token_sites)
        run_transcribe = run_decoder or not asked
        segment = self.window_audio(audio, window)
        n_win = self.num_windows(len(audio))
        grid = whisper_grid(window)
        keep = grid.frames_covering(len(segment))  # ceil(samples / 320)
        capture_encoder = "encoder" in wanted
        total = (self.dims.n_audio_layer if capture_encoder else 1) + (2 if run_transcribe else 0)
        done = 0

        def step(what: str) -> None:
            nonlocal done
            if should_cancel is not None and should_cancel():
                raise Cancelled()
            done += 1
            if progress is not None:
                progress(done, total, what)

        common = dict(model=self.model_id, sample_rate=self.sample_rate, num_samples=len(segment),
                      window=window, num_windows=n_win)
        maps: dict[str, AttentionMaps] = {}
        activations: dict[str, np.ndarray] = {}
        t_mel = time.perf_counter()
        mel = self.mel(segment)
        timings = {"mel": time.perf_counter() - t_mel}

        # 1. encoder self-attention: T kept query rows against all 1500 keys, keys cropped to T;
        #    frames sites from the same pass, cropped to the same T frames
        enc = self.model.encoder
        pre = enc.register_forward_pre_hook(cancel_hook(should_cancel))
        t_fwd = time.perf_counter()
        try:
            with torch.no_grad(), ExitStack() as stack:
                cap = None
                if capture_encoder:
                    cap = stack.enter_context(QKCapture(
                        [b.attn for b in enc.blocks], self.dims.n_audio_head, keep_queries=keep,
                        keep_keys=keep, on_layer=lambda i: step(f"encoder layer {i}")))
                # frames sites alone: the encoder stops after the deepest one
                rec = stack.enter_context(SiteRecorder(
                    self.model, frame_sites, rows=keep,
                    stop=not capture_encoder and not run_transcribe))
                audio_features = enc(mel[None].to(self.device))
        finally:
            pre.remove()
        timings["forward"] = time.perf_counter() - t_fwd  # with the hooks' copies of the sites
        if not capture_encoder:
            step("encoder")
        activations.update(rec.result())
        if cap is not None:
            w, s, p = cap.arrays()
            maps["encoder"] = AttentionMaps(w, s, p, "encoder", query_grid=grid, key_grid=grid,
                                            **common)
        meta: dict = {"alignment_heads": [list(h) for h in self.alignment_heads],
                      "num_samples": len(segment)}
        if not run_transcribe:
            ex = self._result(maps, Transcript(), window, n_win, meta, asked, activations, grid)
            ex.timings = timings
            return ex
        later = ("transcript",) + tuple(c for c in ("cross", "decoder") if c in wanted)

        def partial(transcript: Transcript) -> None:
            if on_partial is not None:
                ex = self._result(dict(maps), transcript, window, n_win, dict(meta),
                                  [s for s in asked if s.name in activations], activations, grid)
                ex.pending = later
                on_partial(ex)

        partial(Transcript())

        # 2. transcript with word timings: whisper.transcribe's own decoding and DTW, fed the
        #    encoder output above; find_alignment's teacher-forced pass over the final tokens is
        #    the pass that captures the cross- and decoder attention and the tokens sites
        forced: dict = {}

        def teacher_forced(tok: torch.Tensor) -> torch.Tensor:
            forced["tokens"] = tok[0].tolist()
            forced["pass"] = self._decoder_pass(tok, audio_features, keep, token_sites,
                                                return_qk=True, cross_kv=encoded.cross_kv)
            return forced["pass"][0]

        encoded = EncodedWindow(self.model, mel, audio_features, teacher_forced)
        transcript, tokens, tokenizer, sot_len = self._transcribe(segment, window, should_cancel,
                                                                  encoded=encoded)
        step("transcript")

        labels = [self._token_text(tokenizer, t) for t in tokens]
        # Text tokens are query rows text_token_start:text_token_end (the prompt comes before,
        # <|endoftext|> last). Note for DTW word timing: whisper.timing.find_alignment takes its
        # softmax over the kept audio frames only (qk[..., :num_frames // 2].softmax(-1)), not over
        # all 1500 keys as the model does and as ``weights`` here are; to reproduce it, softmax
        # ``scores`` (cropped to the kept frames) again.
        meta.update({"text_token_start": sot_len, "text_token_end": len(tokens) - 1,
                     "language": transcript_language(tokenizer)})
        later = later[1:]
        if later:
            partial(Transcript(text=transcript.text, tokens=list(tokens), token_texts=list(labels),
                               words=list(transcript.words)))
        if run_decoder:
            if forced.get("tokens") == tokens:
                _, xcap, scap, trec = forced["pass"]
            else:
                # 3. one teacher-forced pass over the final tokens (transcribe aligned other
                #    tokens, or none: an empty transcript, or a window it decoded in parts)
                tok = torch.tensor(tokens, device=self.device)[None]
                _, xcap, scap, trec = self._decoder_pass(tok, audio_features, keep, token_sites,
                                                         cross_kv=encoded.cross_kv)
            activations.update(trec.result())
            if "cross" in wanted:
                w, s, p = xcap.arrays()
                maps["cross"] = AttentionMaps(w, s, p, "cross", key_grid=grid,
                                              query_labels=labels, meta=dict(meta), **common)
            if "decoder" in wanted:
                w, s, p = scap.arrays()
                maps["decoder"] = AttentionMaps(w, s, p, "decoder", query_labels=labels,
                                                key_labels=labels, meta=dict(meta), **common)
        step("decoder pass")
        transcript.token_texts = labels
        transcript.tokens = tokens
        return self._result(maps, transcript, window, n_win, meta, asked, activations, grid)

    def _decoder_pass(self, tok: torch.Tensor, audio_features: torch.Tensor, keep: int,
                      token_sites: Sequence[str], return_qk: bool = False,
                      cross_kv: dict | None = None):
        """One teacher-forced decoder pass over ``tok`` (1, L): (logits, cross capture, decoder
        self-attention capture, tokens-site recorder). ``return_qk``: the cross-attention modules
        also return whisper's explicit pre-softmax scores, for find_alignment's hooks.
        ``cross_kv``: the cross-attention keys and values the decode computed
        (``encoded.decoder_pass``)."""
        dec = self.model.decoder
        with torch.no_grad(), ExitStack() as stack:
            xcap = stack.enter_context(QKCapture(
                [b.cross_attn for b in dec.blocks], self.dims.n_text_head, keep_keys=keep,
                return_qk=return_qk))
            scap = stack.enter_context(QKCapture(
                [b.attn for b in dec.blocks], self.dims.n_text_head, causal=True))
            trec = stack.enter_context(SiteRecorder(self.model, token_sites))
            logits = decoder_pass(dec, tok, audio_features, cross_kv or {})
        return logits, xcap, scap, trec

    def _result(self, maps, transcript, window, n_win, meta, asked, activations, grid) -> Extraction:
        return Extraction(maps=maps, transcript=transcript, model=self.model_id, window=window,
                          num_windows=n_win, meta=meta,
                          activations={s.name: activations[s.name] for s in asked},
                          frame_grid=grid)

    # ------------------------------------------------------------------------------------------
    def measure_unavailable(self, measure: str) -> str | None:
        """Why this model cannot give ``measure`` (None when it can)."""
        return None if measure in self.measures else "unknown measure"

    def extract_measures(self, audio: np.ndarray, measures: Sequence[str], window: int = 0,
                         tokens: Sequence[int] | None = None, text_start: int | None = None,
                         progress: ProgressFn | None = None,
                         should_cancel: CancelFn | None = None) -> dict[str, np.ndarray]:
        """Encoder context-mixing measures of one window: name -> float16 (N, 1, M or 1, T, T).

        ``grad`` differentiates the log-probability of the transcript ``tokens`` (the
        teacher-forced sequence of an extraction, text from row ``text_start``); without them the
        window is transcribed first.
        """
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if audio.ndim != 1 or audio.size == 0:
            raise SteveError("no mono audio samples to analyse")
        segment = self.window_audio(audio, window)
        keep = whisper_grid(window).frames_covering(len(segment))
        n_layer = self.dims.n_audio_layer
        wanted = [m for m in self.measures if m in measures]
        steps = LayerProgress(n_layer, wanted, progress, layer_word="encoder layer")
        mel = self.mel(segment)
        out = {}
        if ONE_PASS & set(wanted):
            out.update(mixing.layer_measures(self.model, mel, keep, wanted,
                                             steps.step("attention norm / value zeroing"),
                                             should_cancel))
        if "grad" in wanted:
            if tokens is None or text_start is None:
                _, tokens, _, text_start = self._transcribe(segment, window, should_cancel)
            out["grad"] = mixing.grad_relevance(self.model, mel, tokens, text_start, keep,
                                                steps.step("grad relevance"), should_cancel)
        return out

    # ------------------------------------------------------------------------------------------
    def transcribe(self, audio: np.ndarray, window: int = 0,
                   edits: Mapping[str, EditFn] | None = None,
                   should_cancel: CancelFn | None = None) -> Transcript:
        """Transcribe one window, with ``edits`` (module path -> f(output)) applied as forward
        hooks during ``whisper.transcribe`` (see ``edits.py``); the hooks are always removed.
        The transcript carries the teacher-forced token sequence (prompt, text, end).

        Decoding is one greedy pass without timestamps (temperature 0, no sampling fallback, no
        word timing), for the edited and the plain run alike: a changed transcript then comes
        from the edit, not from sampling, and a degenerate edited input costs one decode of at
        most 224 tokens. With whisper's defaults (six temperatures, seeking by timestamps, word
        timing passes) a k = 2 attention window on a 3.7 s file took minutes. A pass stops after
        ``greedy_token_limit`` tokens (10 per second of audio + 10; read speech needs 3-6 per
        second), which only cuts runaway repetitions such as ". . . ." of a broken input.
        ``words`` is empty; ``extract`` gives the transcript with word timings."""
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise SteveError(f"Whisper needs mono audio, got shape {audio.shape}")
        if audio.size == 0:
            raise SteveError("no audio samples to transcribe")
        segment = self.window_audio(audio, window)
        with edit_hooks(self.model, edits):
            transcript, tokens, tokenizer, _ = self._transcribe(segment, window, should_cancel,
                                                                greedy=True)
        transcript.tokens = tokens
        transcript.token_texts = [self._token_text(tokenizer, t) for t in tokens]
        return transcript

    def _transcribe(self, segment: np.ndarray, window: int, should_cancel: CancelFn | None,
                    greedy: bool = False, encoded: EncodedWindow | None = None):
        """``whisper.transcribe`` of one window; ``encoded``: the model with the window's encoder
        output already computed (transcribe then decodes and aligns from it)."""
        model = self.model
        language = None if model.is_multilingual else "en"
        hooks = [m.register_forward_pre_hook(cancel_hook(should_cancel))
                 for m in (model.encoder, model.decoder)]
        try:
            # whisper's default temperature fallback (greedy first, sampling only when greedy
            # output repeats itself), seeded so that the same input gives the same transcript
            with torch.no_grad(), torch.random.fork_rng():
                torch.manual_seed(0)
                options = (dict(temperature=0.0, word_timestamps=False, without_timestamps=True,
                                sample_len=greedy_token_limit(len(segment), self.sample_rate))
                           if greedy else dict(word_timestamps=True))
                result = whisper.transcribe(model if encoded is None else encoded, segment,
                                            language=language, fp16=False,
                                            verbose=None, condition_on_previous_text=False,
                                            **options)
        finally:
            for h in hooks:
                h.remove()
        tokenizer = get_tokenizer(model.is_multilingual, num_languages=model.num_languages,
                                  language=result.get("language") or "en", task="transcribe")
        text_tokens = [t for seg in result["segments"] for t in seg["tokens"] if t < tokenizer.eot]
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        tokens = prompt + text_tokens + [tokenizer.eot]
        offset = window * WHISPER_WINDOW_SAMPLES / self.sample_rate
        words = [Word(offset + float(w["start"]), offset + float(w["end"]), w["word"].strip(),
                      float(w.get("probability", float("nan"))))
                 for seg in result["segments"] for w in seg.get("words", [])]
        return Transcript(text=result["text"].strip(), words=words), tokens, tokenizer, len(prompt)

    @staticmethod
    def _token_text(tokenizer, token: int) -> str:
        raw = tokenizer.encoding.decode_single_token_bytes(token)
        return raw.decode("utf-8", errors="replace")


#: greedy decoding stops after this many tokens per second of audio (plus GREEDY_TOKENS_BASE):
#: read speech runs at 3-6 tokens/s, so only runaway repetitions of a broken input are cut
GREEDY_TOKENS_PER_S = 10
GREEDY_TOKENS_BASE = 10


def greedy_token_limit(num_samples: int, sample_rate: int) -> int:
    """Most tokens one greedy pass may sample (whisper's own limit is 224)."""
    return min(224, GREEDY_TOKENS_BASE + math.ceil(GREEDY_TOKENS_PER_S * num_samples / sample_rate))


def transcript_language(tokenizer) -> str:
    return tokenizer.language or "en"
