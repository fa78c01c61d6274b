"""fmnist_core.images: every image is checked against the same limits before it is decoded."""

from __future__ import annotations

import base64
import functools
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from fmnist_core import images, sketch


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@functools.cache
def png_of_zeros(width: int, height: int) -> bytes:
    """A complete, valid greyscale PNG of zeros, compressed row block by row block (never
    held whole): 13000x13000 is ~170 KB on disk and 169 MB decoded (RGBA from a canvas: 676)."""
    packer = zlib.compressobj(9)
    block = b"\0" * ((width + 1) * 500)  # filter byte + row, 500 rows at a time
    rows, idat = 0, []
    while rows < height:
        n = min(500, height - rows)
        idat.append(packer.compress(block[: (width + 1) * n]))
        rows += n
    idat.append(packer.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", b"".join(idat))
            + _chunk(b"IEND", b""))  # fmt: skip


def png(width: int, height: int, mode: str = "RGBA") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (width, height)).save(buf, format="PNG")
    return buf.getvalue()


def url(data: bytes) -> str:
    return images.PNG_DATA_URL + base64.b64encode(data).decode()


@pytest.fixture
def decoded(monkeypatch) -> list[tuple[int, int]]:
    """The sizes PIL decodes pixels for (its ``load``), recorded without changing anything."""
    sizes: list[tuple[int, int]] = []
    load = ImageFile.ImageFile.load

    def spy(self):
        sizes.append(self.size)
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    return sizes


def test_check_image_bytes_reads_the_size_from_the_header_only(decoded):
    assert images.check_image_bytes(png(300, 200)) == (300, 200)
    assert decoded == []


def test_a_small_file_declaring_a_huge_image_is_refused_before_decoding(decoded):
    bomb = png_of_zeros(13_000, 13_000)  # ~170 KB: passes the byte limit
    for read in (images.check_image_bytes, images.read_upload, sketch.prepare):
        with pytest.raises(images.UploadError, match="13000 x 13000 pixels; the limit is 25,000"):
            read(bomb)
    with pytest.raises(images.UploadError, match="13000 x 13000 pixels"):
        images.read_data_url(url(bomb), (400, 400))
    assert decoded == []


def test_a_canvas_drawing_of_the_canvas_size_decodes():
    image = images.read_data_url(url(png(400, 400)), (400, 400))
    assert image.size == (400, 400) and image.mode == "RGBA"
    assert images.read_data_url(url(png(1200, 1200)), (400, 400)).size == (1200, 1200)  # 3x


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (url(png(401 * 3, 400)), "1203 x 400 pixels but the canvas is 400 x 400"),
        (url(png(399, 400)), "399 x 400 pixels but the canvas is 400 x 400"),
        (url(png(1300, 1300)), "1300 x 1300 pixels; the limit is 1,440,000"),
        ("data:image/jpeg;base64,/9j/", "not a PNG"),
        (None, "not a PNG"),
        (["data:image/png;base64,"], "not a PNG"),
        (images.PNG_DATA_URL + "!!!!", "not valid base64"),
        (url(b"GIF89a" + b"\0" * 50), "not a PNG"),
        (url(png(400, 400)[:100]), "truncated or corrupt"),
    ],
)
def test_a_canvas_value_that_is_no_drawing_of_the_canvas_is_refused(value, message, decoded):
    with pytest.raises(images.UploadError, match=message):
        images.read_data_url(value, (400, 400))
    assert all(w * h <= 400 * 400 for w, h in decoded)


def test_an_over_long_data_url_is_refused_before_the_base64_decode(monkeypatch):
    def never(*_args, **_kwargs):
        raise AssertionError("decoded")

    monkeypatch.setattr(images.base64, "b64decode", never)
    too_long = images.PNG_DATA_URL + "A" * (4 * (images.MAX_UPLOAD_BYTES // 3 + 2))
    with pytest.raises(images.UploadError, match="over 10 MB"):
        images.read_data_url(too_long, (400, 400))


def test_decoded_images_over_the_pixel_limit_are_refused_before_framing(monkeypatch, decoded):
    monkeypatch.setattr(images, "MAX_UPLOAD_PIXELS", 100 * 100)
    with pytest.raises(images.UploadError, match="101 x 100 pixels"):
        sketch.prepare(np.zeros((100, 101), np.uint8))
    lazy = Image.open(io.BytesIO(png(200, 100)))  # opened, pixels not decoded yet
    with pytest.raises(images.UploadError, match="200 x 100 pixels"):
        sketch.prepare(lazy)
    assert decoded == []
    sketch.prepare(np.pad(np.ones((50, 50), np.uint8) * 255, 25))  # 100 x 100 is fine
