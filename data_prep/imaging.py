"""Image facts without decoding pixels: size from the file header, content hash, and the
number of vision tokens the Qwen-VL resize rule gives an image.

Pure module (no I/O). Header parsing covers PNG, JPEG, GIF, WebP (VP8/VP8L/VP8X) and BMP,
which is what the two sources ship; anything else falls back to ``PIL.Image.open``, which also
reads only the header (pixels are decoded lazily and never touched here).
"""

from __future__ import annotations

import hashlib
import io
import struct
import threading

from zppo_core.vision import AspectRatioError, smart_resize  # noqa: F401 - re-exported

#: digest size (bytes) of the BLAKE2b content hash used for image file names and dedup
HASH_BYTES = 16

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
#: JPEG start-of-frame markers carrying the frame size (SOF0..SOF15 minus DHT/JPG/DAC)
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def content_hash(data: bytes) -> str:
    """Hex BLAKE2b digest of the image bytes (the image's identity everywhere in curation)."""
    return hashlib.blake2b(data, digest_size=HASH_BYTES).hexdigest()


def _png(b: bytes) -> tuple[str, int, int] | None:
    if len(b) >= 24 and b[12:16] == b"IHDR":
        w, h = struct.unpack_from(">II", b, 16)
        return "png", w, h
    return None


def _jpeg(b: bytes) -> tuple[str, int, int] | None:
    i, n = 2, len(b)
    while i + 4 <= n:
        if b[i] != 0xFF:
            return None
        marker = b[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            i += 2
            continue
        (seg_len,) = struct.unpack_from(">H", b, i + 2)
        if marker in _JPEG_SOF:
            if i + 9 > n:
                return None
            h, w = struct.unpack_from(">HH", b, i + 5)
            return "jpeg", w, h
        i += 2 + seg_len
    return None


def _webp(b: bytes) -> tuple[str, int, int] | None:
    if len(b) < 30:
        return None
    kind = b[12:16]
    if kind == b"VP8 " and b[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack_from("<HH", b, 26)
        return "webp", w & 0x3FFF, h & 0x3FFF
    if kind == b"VP8L" and b[20] == 0x2F:
        bits = int.from_bytes(b[21:25], "little")
        return "webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X":
        w = int.from_bytes(b[24:27], "little") + 1
        h = int.from_bytes(b[27:30], "little") + 1
        return "webp", w, h
    return None


_PIL_LIMIT_LOCK = threading.Lock()


def _pil_open_size(b: bytes) -> tuple[str, int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(b)) as im:  # parses the header only
        w, h = im.size
        return (im.format or "unknown").lower(), w, h


def _pil_header(b: bytes) -> tuple[str, int, int] | None:
    """Header facts through PIL for the formats parsed nowhere else. PIL refuses to even open
    an image over its pixel limit (``DecompressionBombError``); the size is still wanted (the
    row is rejected as ``image_too_large``), so the header is re-read with the limit lifted.
    Nothing is decoded either way."""
    from PIL import Image

    try:
        try:
            return _pil_open_size(b)
        except Image.DecompressionBombError:
            with _PIL_LIMIT_LOCK:
                limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
                try:
                    return _pil_open_size(b)
                finally:
                    Image.MAX_IMAGE_PIXELS = limit
    except Exception:  # noqa: BLE001 - any parser failure means "header unreadable", never an abort
        return None


def image_header(data: bytes | None) -> tuple[str, int, int] | None:
    """``(format, width, height)`` read from the header of ``data``; None when unreadable.

    >>> image_header(b"not an image") is None
    True
    """
    if not data:
        return None
    if data[:8] == _PNG_SIG:
        out = _png(data)
    elif data[:3] == b"\xff\xd8\xff":
        out = _jpeg(data)
    elif data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = struct.unpack_from("<HH", data, 6)
        out = ("gif", w, h)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        out = _webp(data)
    elif data[:2] == b"BM" and len(data) >= 26:
        w, h = struct.unpack_from("<ii", data, 18)
        out = ("bmp", w, abs(h))
    else:
        out = _pil_header(data)
    if out is None or out[1] <= 0 or out[2] <= 0:
        return None
    return out


def image_tokens(
    height: int, width: int, *, patch_size: int, merge_size: int, min_pixels: int, max_pixels: int, max_ratio: float
) -> int:
    """Vision tokens (``<|image_pad|>`` count) of one image: ``(h'/f) * (w'/f)``, f = patch x merge.

    >>> image_tokens(100, 100, patch_size=16, merge_size=2, min_pixels=256*32*32,
    ...              max_pixels=1280*32*32, max_ratio=200)
    256
    """
    factor = patch_size * merge_size
    h, w = smart_resize(
        height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels, max_ratio=max_ratio
    )
    return (h // factor) * (w // factor)
