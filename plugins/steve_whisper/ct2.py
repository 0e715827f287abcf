"""Read CTranslate2 ``model.bin`` files (format version 6) and map Whisper ones to openai-whisper.

Layout (little endian): u32 version, string spec name, u32 spec revision, u32 variable count, then
per variable: string name, u8 rank, u32 dims[rank], u8 dtype, u32 byte count, raw bytes; then
u32 alias count and (string alias, string target) pairs. A string is a u16 length (including the
terminating NUL) followed by UTF-8 bytes and the NUL.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np

# CTranslate2 DataType enum -> numpy dtype
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


class CT2FormatError(ValueError):
    pass


class _Reader:
    def __init__(self, data: bytes):
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise CT2FormatError(f"file ends at byte {len(self.data)}, needed {self.pos + n}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack("<H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def string(self) -> str:
        n = self.u16()
        raw = bytes(self.take(n))
        return raw.rstrip(b"\0").decode("utf-8")


def read_ct2(path: str | Path) -> tuple[str, dict[str, np.ndarray]]:
    """Return (spec name, {variable name: array}); aliases resolve to their targets."""
    data = Path(path).read_bytes()
    r = _Reader(data)
    version = r.u32()
    if version != 6:
        raise CT2FormatError(f"unsupported CTranslate2 model version {version} (expected 6)")
    spec = r.string()
    r.u32()  # spec revision
    variables: dict[str, np.ndarray] = {}
    for _ in range(r.u32()):
        name = r.string()
        rank = r.u8()
        dims = [r.u32() for _ in range(rank)]
        dtype = r.u8()
        if dtype not in _DTYPES:
            raise CT2FormatError(f"variable {name}: unknown dtype code {dtype}")
        nbytes = r.u32()
        arr = np.frombuffer(r.take(nbytes), dtype=_DTYPES[dtype])
        variables[name] = arr.reshape(dims) if dims else arr.reshape(())
    for _ in range(r.u32()):
        alias, target = r.string(), r.string()
        variables[alias] = variables[target]
    return spec, variables


_LAYER = re.compile(r"^(encoder|decoder)/layer_(\d+)/")


def count_layers(variables: dict[str, np.ndarray], part: str) -> int:
    """Number of ``part/layer_<i>/`` blocks (a prefix match on 'layer_' would count layer_norm)."""
    idx = {int(m.group(2)) for k in variables if (m := _LAYER.match(k)) and m.group(1) == part}
    return max(idx) + 1 if idx else 0


def whisper_dims(variables: dict[str, np.ndarray]) -> dict[str, int]:
    """openai-whisper ModelDimensions fields read off the CT2 variables."""
    conv1 = variables["encoder/conv1/weight"]  # (n_state, n_mels, 3)
    return dict(
        n_mels=int(conv1.shape[1]),
        n_audio_ctx=int(variables["encoder/position_encodings/encodings"].shape[0]),
        n_audio_state=int(conv1.shape[0]),
        n_audio_head=int(variables["encoder/num_heads"]),
        n_audio_layer=count_layers(variables, "encoder"),
        n_vocab=int(variables["decoder/embeddings/weight"].shape[0]),
        n_text_ctx=int(variables["decoder/position_encodings/encodings"].shape[0]),
        n_text_state=int(variables["decoder/embeddings/weight"].shape[1]),
        n_text_head=int(variables["decoder/num_heads"]),
        n_text_layer=count_layers(variables, "decoder"),
    )


def _split3(a: np.ndarray) -> list[np.ndarray]:
    n = a.shape[0] // 3
    return [a[:n], a[n:2 * n], a[2 * n:]]


def _split2(a: np.ndarray) -> list[np.ndarray]:
    n = a.shape[0] // 2
    return [a[:n], a[n:]]


def whisper_state_dict(variables: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map CT2 Whisper variables to openai-whisper ``Whisper.state_dict()`` keys (numpy arrays)."""
    v = variables
    sd: dict[str, np.ndarray] = {}

    def ln(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = v[f"{src}/gamma"]
        sd[f"{dst}.bias"] = v[f"{src}/beta"]

    def lin(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = v[f"{src}/weight"]
        if f"{src}/bias" in v:
            sd[f"{dst}.bias"] = v[f"{src}/bias"]

    def self_attn(dst: str, src: str) -> None:
        wq, wk, wv = _split3(v[f"{src}/linear_0/weight"])
        bq, _bk, bv = _split3(v[f"{src}/linear_0/bias"])  # whisper's key has no bias
        sd.update({f"{dst}.query.weight": wq, f"{dst}.query.bias": bq, f"{dst}.key.weight": wk,
                   f"{dst}.value.weight": wv, f"{dst}.value.bias": bv})
        lin(f"{dst}.out", f"{src}/linear_1")

    def mlp(dst: str, src: str) -> None:
        lin(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        lin(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
        ln(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")

    for i in (1, 2):
        sd[f"encoder.conv{i}.weight"] = v[f"encoder/conv{i}/weight"]
        sd[f"encoder.conv{i}.bias"] = v[f"encoder/conv{i}/bias"]
    sd["encoder.positional_embedding"] = v["encoder/position_encodings/encodings"]
    for i in range(count_layers(v, "encoder")):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        self_attn(f"{dst}.attn", f"{src}/self_attention")
        ln(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        mlp(dst, src)
    ln("encoder.ln_post", "encoder/layer_norm")

    sd["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
    sd["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
    for i in range(count_layers(v, "decoder")):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        self_attn(f"{dst}.attn", f"{src}/self_attention")
        ln(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        cross = f"{src}/attention"
        lin(f"{dst}.cross_attn.query", f"{cross}/linear_0")
        wk, wv = _split2(v[f"{cross}/linear_1/weight"])
        _bk, bv = _split2(v[f"{cross}/linear_1/bias"])
        sd.update({f"{dst}.cross_attn.key.weight": wk, f"{dst}.cross_attn.value.weight": wv,
                   f"{dst}.cross_attn.value.bias": bv})
        lin(f"{dst}.cross_attn.out", f"{cross}/linear_2")
        ln(f"{dst}.cross_attn_ln", f"{cross}/layer_norm")
        mlp(dst, src)
    ln("decoder.ln", "decoder/layer_norm")
    return sd
