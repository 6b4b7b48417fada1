"""G.711 mu-law (PCMU) and A-law (PCMA) with numpy lookup tables (ITU-T G.711).

Every conversion is one table lookup per sample:

* decoding: a 256-entry ``int16`` table indexed by the code byte;
* encoding: a 65536-entry ``uint8`` table indexed by the 16-bit linear sample
  reinterpreted as unsigned, so ``table[samples.view(np.uint16)]``;
* transcoding PCMU <-> PCMA: a 256-byte table for ``bytes.translate``, which
  runs in C without touching numpy (the bridge's per-packet path).

The tables are built once at import from the segment/quantisation rules of
G.711 (Tables 1a/1b and 2a/2b), in the 16-bit linear scale used by the ITU-T
software tools library (G.191): mu-law codes decode to multiples of 4 in
[-32124, 32124], A-law codes to multiples of 8 in [-32256, 32256].
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from sipspeak.media.rtp import Codec

__all__ = [
    "ALAW_TO_ULAW",
    "SILENCE_BYTE",
    "ULAW_TO_ALAW",
    "alaw_decode",
    "alaw_encode",
    "decode",
    "encode",
    "transcode",
    "ulaw_decode",
    "ulaw_encode",
]

Pcm = npt.NDArray[np.int16]

_MU_BIAS: Final = 0x84


def _build_ulaw_decode() -> Pcm:
    """G.711 §3 (Table 2a/2b): code byte -> linear, via the biased segment form."""
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = ((u & 0x0F) << 3) + _MU_BIAS
    t <<= (u & 0x70) >> 4
    return np.where(u & 0x80, _MU_BIAS - t, t - _MU_BIAS).astype(np.int16)


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    """Quantiser of G.711 mu-law as in the ITU-T G.191 reference (``ulaw_compress``).

    Negative samples are taken in one's complement (``~x``), reduced to 14 bits,
    biased by 33 and clipped to 0x1FFF; the segment is the bit length of
    ``magnitude >> 6``; the code is sent inverted, sign bit 1 for x >= 0.
    """
    pcm = _all_int16()
    absno = (np.where(pcm < 0, ~pcm, pcm) >> 2) + 33
    absno = np.minimum(absno, 0x1FFF)
    segno = np.ones_like(absno)
    for k in range(7):
        segno += (absno >> 6) >= (1 << k)
    high = 8 - segno
    low = 0x0F - ((absno >> segno) & 0x0F)
    code: npt.NDArray[np.int32] = (high << 4) | low | np.where(pcm >= 0, 0x80, 0)
    return code.astype(np.uint8)


def _all_int16() -> npt.NDArray[np.int32]:
    """Every 16-bit value, ordered by its unsigned view (index = ``uint16`` view)."""
    pcm = np.arange(65536, dtype=np.int32)
    return np.where(pcm >= 32768, pcm - 65536, pcm)


def _build_alaw_decode() -> Pcm:
    """G.711 §2 (Table 1a/1b): even bits inverted (XOR 0x55), sign bit 1 = positive."""
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype(np.int16)


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    pcm = _all_int16()
    # A-law works on 13 bits; negative values are coded from -x - 1 (one's complement).
    v = pcm >> 3
    mask = np.where(v >= 0, 0xD5, 0x55)
    mag = np.where(v >= 0, v, -v - 1)
    mag = np.minimum(mag, 0xFFF)
    seg = np.zeros_like(mag)
    for bound in (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF):
        seg += mag > bound
    mant = np.where(seg < 2, (mag >> 1) & 0x0F, (mag >> np.maximum(seg, 1)) & 0x0F)
    code = ((seg << 4) | mant) ^ mask
    return code.astype(np.uint8)


_ULAW_DEC: Final = _build_ulaw_decode()
_ULAW_ENC: Final = _build_ulaw_encode()
_ALAW_DEC: Final = _build_alaw_decode()
_ALAW_ENC: Final = _build_alaw_encode()

#: ``payload.translate(ULAW_TO_ALAW)`` turns a PCMU payload into PCMA.
ULAW_TO_ALAW: Final[bytes] = _ALAW_ENC[_ULAW_DEC.view(np.uint16)].tobytes()
#: ``payload.translate(ALAW_TO_ULAW)`` turns a PCMA payload into PCMU.
ALAW_TO_ULAW: Final[bytes] = _ULAW_ENC[_ALAW_DEC.view(np.uint16)].tobytes()

#: Code of linear 0 (digital silence) per codec.
SILENCE_BYTE: Final[dict[Codec, int]] = {
    "PCMU": int(_ULAW_ENC[0]),
    "PCMA": int(_ALAW_ENC[0]),
}


def ulaw_decode(payload: bytes) -> Pcm:
    """PCMU bytes -> int16 samples."""
    return _ULAW_DEC[np.frombuffer(payload, dtype=np.uint8)]


def alaw_decode(payload: bytes) -> Pcm:
    """PCMA bytes -> int16 samples."""
    return _ALAW_DEC[np.frombuffer(payload, dtype=np.uint8)]


def ulaw_encode(samples: npt.ArrayLike) -> bytes:
    """int16 samples -> PCMU bytes."""
    pcm = np.asarray(samples, dtype=np.int16)
    return bytes(_ULAW_ENC[pcm.view(np.uint16)].tobytes())


def alaw_encode(samples: npt.ArrayLike) -> bytes:
    """int16 samples -> PCMA bytes."""
    pcm = np.asarray(samples, dtype=np.int16)
    return bytes(_ALAW_ENC[pcm.view(np.uint16)].tobytes())


def decode(codec: Codec, payload: bytes) -> Pcm:
    """Decode a G.711 payload of either law."""
    return ulaw_decode(payload) if codec == "PCMU" else alaw_decode(payload)


def encode(codec: Codec, samples: npt.ArrayLike) -> bytes:
    """Encode int16 samples with either law."""
    return ulaw_encode(samples) if codec == "PCMU" else alaw_encode(samples)


def transcode(payload: bytes, source: Codec, target: Codec) -> bytes:
    """Convert a payload between laws byte by byte (identity when they match)."""
    if source == target:
        return payload
    return payload.translate(ULAW_TO_ALAW if source == "PCMU" else ALAW_TO_ULAW)
