"""Untrusted image bytes -> a decoded PIL image, within one set of limits for every path.

    w, h = check_image_bytes(png_bytes)        # from the header only; UploadError if refused
    image = read_upload(png_bytes)             # decoded (PNG/JPEG), EXIF rotation applied
    image = read_data_url(url, (400, 400))     # a drawing canvas's PNG data URL, its size checked

Uploads, canvas drawings and anything later pass the same byte and pixel limits *before* the
pixels are decoded: a small file can declare a huge image (a 876 KB PNG of 13000x13000 decodes
to ~676 MB of RGBA), so the declared size is read from the header and checked first.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_UPLOAD_BYTES = 10 * 2**20
MAX_UPLOAD_PIXELS = 25_000_000  # 5000 x 5000
UPLOAD_FORMATS = ("PNG", "JPEG")
PNG_DATA_URL = "data:image/png;base64,"  # what a drawing canvas sends
CANVAS_MAX_SCALE = 3  # a drawing may be rendered at up to 3x the canvas size (HiDPI screens)


class UploadError(ValueError):
    """An image was refused: too big, not a PNG/JPEG, empty or corrupt; the message says why."""


def _open_checked(
    data: bytes,
    max_bytes: int,
    max_pixels: int,
    formats: tuple[str, ...] = UPLOAD_FORMATS,
    advice: str = "Upload a smaller image.",
) -> Image.Image:
    """Open ``data`` reading only its header; UploadError when it is over the limits.

    PIL's ``open`` parses the header (PNG: the chunks before the first IDAT, text chunks capped
    by PIL) and allocates no pixels, so a file declaring 13000x13000 costs nothing here.
    """
    if not data:
        raise UploadError("The file is empty. Upload a PNG or JPEG image.")
    if len(data) > max_bytes:
        raise UploadError(
            f"The file is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB. "
            + advice
        )
    try:
        with warnings.catch_warnings():  # PIL's own guard is looser than ours (below), which
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # names the size
            image = Image.open(io.BytesIO(data), formats=formats)
    except Image.DecompressionBombError:  # over 2x PIL's limit: refused before we see a size
        raise UploadError(_too_many_pixels(None, None, max_pixels, advice)) from None
    except UnidentifiedImageError:
        raise UploadError("This file is not a PNG or JPEG image.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UploadError(f"The image is truncated or corrupt ({exc}). Try another file.") from None
    if image.width * image.height > max_pixels:
        raise UploadError(_too_many_pixels(image.width, image.height, max_pixels, advice))
    return image


def check_image_bytes(
    data: bytes, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_UPLOAD_PIXELS
) -> tuple[int, int]:
    """(width, height) of a PNG/JPEG within the limits, read from its header only (no pixel
    is decoded); UploadError with a message otherwise. Every image path uses these limits."""
    return _open_checked(data, max_bytes, max_pixels).size


def _decode(image: Image.Image) -> Image.Image:
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise UploadError(f"The image is truncated or corrupt ({exc}). Try another file.") from None
    return image


def read_upload(
    data: bytes, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_UPLOAD_PIXELS
) -> Image.Image:
    """Decode an uploaded PNG/JPEG, refusing oversized, empty, foreign or corrupt files."""
    image = _decode(_open_checked(data, max_bytes, max_pixels))
    return ImageOps.exif_transpose(image)  # phone photos: apply the camera's rotation


def read_data_url(url: Any, canvas_size: tuple[int, int]) -> Image.Image:
    """Decode a drawing canvas's ``data:image/png;base64,...`` value, checked before decoding.

    The string's length is checked before the base64 decode, the PNG's declared size before
    its pixels: it must be the canvas's (width, height), up to CANVAS_MAX_SCALE times larger
    (a canvas may render at the screen's pixel ratio), and within the upload limits.
    """
    if not isinstance(url, str) or not url.startswith(PNG_DATA_URL):
        raise UploadError("The drawing is not a PNG image; it was ignored. Draw again.")
    encoded = url[len(PNG_DATA_URL) :]
    if len(encoded) > 4 * (MAX_UPLOAD_BYTES // 3 + 1):  # base64: 4 characters per 3 bytes
        raise UploadError(f"The drawing is over {MAX_UPLOAD_BYTES // 2**20} MB; it was ignored.")
    try:
        data = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise UploadError("The drawing is not valid base64; it was ignored. Draw again.") from None
    width, height = canvas_size
    most = (width * CANVAS_MAX_SCALE, height * CANVAS_MAX_SCALE)
    limit = min(most[0] * most[1], MAX_UPLOAD_PIXELS)
    image = _open_checked(data, MAX_UPLOAD_BYTES, limit, ("PNG",), "The drawing was ignored.")
    if not (width <= image.width <= most[0] and height <= image.height <= most[1]):
        raise UploadError(
            f"The drawing is {image.width} x {image.height} pixels but the canvas is "
            f"{width} x {height}; it was ignored. Draw again."
        )
    return _decode(image)


def _too_many_pixels(width: int | None, height: int | None, max_pixels: int, advice: str) -> str:
    size = f"{width} x {height} pixels" if width else "too many pixels"
    return f"The image is {size}; the limit is {max_pixels:,} pixels. {advice}"


def check_pixels(width: int, height: int) -> None:
    """The pixel limit for an image already decoded (an array, a PIL image), whatever path it
    came by: framing it makes several float copies, so a huge one is refused first."""
    if width * height > MAX_UPLOAD_PIXELS:
        raise UploadError(_too_many_pixels(width, height, MAX_UPLOAD_PIXELS, "Use a smaller one."))
