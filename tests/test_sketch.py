"""fmnist_core.sketch: framing checked against shapes whose framing is known by hand."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from fmnist_core import TrainConfig, cli, data, sketch
from fmnist_core.model import NotebookCNN
from fmnist_core.runs import RunRecorder, load_run
from fmnist_core.train import EpochEnd, RunEnd

WHITE = (255, 255, 255, 255)
FILLED = round(sketch.FILL_LEVEL * 255)  # the brightness of a filled inside


def canvas(draw_fn, size=(400, 400)) -> np.ndarray:
    """An st_canvas-like image: RGBA, opaque black background, white strokes."""
    image = Image.new("RGBA", size, (0, 0, 0, 255))
    draw_fn(ImageDraw.Draw(image))
    return np.asarray(image)


def bbox(preview: np.ndarray, level: int = 128) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) inclusive of pixels brighter than ``level``."""
    rows = np.flatnonzero((preview > level).any(1))
    cols = np.flatnonzero((preview > level).any(0))
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def test_small_off_centre_rectangle_is_centred_and_scaled():
    # 40 x 20 px in the bottom-left corner of a 400 x 400 canvas.
    drawing = canvas(lambda d: d.rectangle((20, 350, 59, 369), fill=WHITE))
    preview = sketch.prepare(drawing).preview
    assert preview.shape == (28, 28) and preview.dtype == np.uint8
    # Longest side -> 28 px, aspect kept -> 14 px tall, centred: rows 7..20, all 28 columns.
    assert bbox(preview) == (7, 20, 0, 27)
    # Coloured in: the dataset's level inside (not a flat 255), a brighter rim, dark around.
    assert preview[14, 14] == FILLED and preview[3, 14] == 0 and preview[24, 14] == 0
    assert preview[7, 14] > FILLED


def test_tiny_square_fills_the_frame_like_a_dataset_item():
    drawing = canvas(lambda d: d.rectangle((300, 10, 307, 17), fill=WHITE))  # 8 x 8 px
    preview = sketch.prepare(drawing).preview
    assert bbox(preview) == (0, 27, 0, 27)
    mass = preview.astype(float) / preview.sum()
    assert (mass.sum(1) * np.arange(28)).sum() == pytest.approx(13.5, abs=0.01)
    assert (mass.sum(0) * np.arange(28)).sum() == pytest.approx(13.5, abs=0.01)


def outline(d: ImageDraw.ImageDraw) -> None:
    d.rectangle((100, 100, 300, 300), outline=WHITE, width=6)


def test_closed_outline_is_filled_when_on_and_not_when_off():
    drawing = canvas(outline)
    filled = sketch.prepare(drawing, fill=True).preview
    hollow = sketch.prepare(drawing, fill=False).preview
    assert filled[4:24, 4:24].min() == FILLED  # the inside is solid
    assert hollow[4:24, 4:24].max() == 0  # the inside stays dark
    assert hollow[0, 14] > 100 and hollow[14, 0] > 100  # the outline itself is kept


def test_a_small_gap_still_counts_as_closed_but_an_open_shape_is_not_filled():
    def gapped(d):
        outline(d)
        d.rectangle((190, 94, 199, 106), fill=(0, 0, 0, 255))  # 10 px gap in the top edge

    assert sketch.prepare(canvas(gapped)).preview[14, 14] == FILLED
    cup = canvas(lambda d: d.line([(100, 100), (100, 300), (300, 300), (300, 100)], WHITE, 6))
    assert sketch.prepare(cup).preview[4:24, 4:24].max() == 0


def test_a_bag_is_filled_but_its_small_handle_hole_stays_open():
    def bag(d):
        d.rectangle((50, 150, 350, 350), outline=WHITE, width=8)  # body: the largest hole
        d.line([(140, 150), (140, 80), (260, 80), (260, 150)], WHITE, 8)  # handle: a small one

    preview = sketch.prepare(canvas(bag)).preview  # 300 x 270 px -> 28 x 25, rows 1..25
    assert preview[18, 14] == FILLED  # body filled
    assert preview[2:6, 14].max() < 50  # the handle's hole stays dark
    assert preview[1, 14] > 100  # the handle's top bar is there


def test_sandal_straps_are_not_filled_but_the_sole_is_drawn():
    """The space under a sandal's straps is background in the dataset: it must stay dark."""

    def sandal(d):
        d.polygon([(20, 300), (380, 290), (380, 340), (20, 345)], outline=WHITE, width=8)  # sole
        d.line([(80, 300), (130, 170), (180, 298)], WHITE, 8, "curve")  # two strap arches
        d.line([(230, 295), (280, 160), (330, 293)], WHITE, 8, "curve")

    filled = sketch.prepare(canvas(sandal)).preview  # 360 x 185 px -> 28 x 14
    hollow = sketch.prepare(canvas(sandal), fill=False).preview
    top, bottom, _, _ = bbox(filled)
    assert (top, bottom) == bbox(hollow)[:2]
    straps = slice(top, top + 8)  # the rows above the sole: nothing there may be filled
    assert (filled[straps].astype(int) - hollow[straps]).max() <= 2
    assert filled[top + 6, 8:10].max() < 60 and filled[top + 6, 20:22].max() < 60  # inside
    assert filled[bottom, 4:24].min() > 80  # the sole is there


def test_a_bag_strap_loop_is_not_filled():
    def bag(d):
        d.rectangle((40, 170, 360, 370), outline=WHITE, width=10)  # body
        d.line([(130, 172), (150, 80), (200, 60), (250, 80), (270, 172)], WHITE, 10, "curve")

    preview = sketch.prepare(canvas(bag)).preview  # 330 x 320 -> 28 x 27
    assert preview[20, 14] == FILLED  # the body is filled
    assert preview[5:9, 13:16].max() < 60  # the loop of the strap stays dark


def test_interior_detail_lines_stay_thin_darker_lines_inside_the_fill():
    """A coat: an outline with its front opening and a pocket. Both halves and the pocket are
    filled; the lines inside are darker than the fill (seams, as in the dataset's photos)."""

    def coat(d):
        d.rectangle((80, 40, 320, 360), outline=WHITE, width=8)
        d.line([(200, 44), (200, 356)], WHITE, 6)  # the front opening splits the inside in two
        d.rectangle((110, 250, 160, 300), outline=WHITE, width=6)  # a pocket

    preview = sketch.frame_ink(sketch.to_ink(canvas(coat)), blur=0)  # 248 x 328 -> 21 x 28
    assert (preview[2:16, 5:12] == FILLED).all() and (preview[2:26, 15:22] == FILLED).all()
    opening = preview[2:26, 13]  # the front opening: one column darker than the fill
    assert (opening < FILLED * 0.8).all() and opening.min() > 60
    assert (preview[20, 7:9] == FILLED).all()  # inside the pocket: filled
    assert preview[18, 5:10].max() < FILLED  # the pocket's edge: darker, still there
    assert preview[18, 5:10].min() > 60
    assert preview[14, 3] > 60 and preview[14, :3].max() == 0  # the outline, dark outside


def test_a_scribbled_fill_is_one_flat_inside_not_stripes():
    def scribble(d):
        d.rectangle((100, 60, 300, 340), outline=WHITE, width=8)
        for y in range(80, 330, 24):  # a zigzag hatching inside, every 24 px
            d.line([(104, y), (296, y + 12)], WHITE, 6)

    preview = sketch.frame_ink(sketch.to_ink(canvas(scribble)), blur=0)
    inside = preview[4:24, 6:14]
    assert inside.min() == FILLED and inside.max() == FILLED


def drawn_square() -> np.ndarray:
    return canvas(lambda d: d.ellipse((60, 80, 260, 330), outline=WHITE, width=10))


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


def test_rgba_rgb_grey_pil_bytes_and_transparent_inputs_agree():
    rgba = drawn_square()
    expected = sketch.prepare(rgba).preview
    grey = rgba[:, :, 0]
    transparent = np.zeros_like(rgba)  # default canvas colours: black strokes, no background
    transparent[:, :, 3] = grey
    variants = {
        "rgb": rgba[:, :, :3],
        "grey": grey,
        "grey (H, W, 1)": grey[:, :, None],
        "float grey": grey.astype(np.float32) / 255,
        "PIL": Image.fromarray(rgba),
        "PNG bytes": png_bytes(Image.fromarray(grey)),
        "transparent": transparent,
        "dark on light paper": 255 - grey,
    }
    for name, image in variants.items():
        got = sketch.prepare(image).preview
        assert np.abs(got.astype(int) - expected).max() <= 1, name


def test_photo_like_upload_is_inverted_and_background_removed():
    paper = np.full((300, 240), 200, np.uint8)  # grey-white paper, dark pencil strokes
    photo = Image.fromarray(paper)
    ImageDraw.Draw(photo).rectangle((50, 60, 150, 200), outline=60, width=8)
    preview = sketch.prepare(png_bytes(photo.convert("RGB"), "JPEG")).preview
    assert preview[0:3].max() > 150  # the dark strokes became light
    assert abs(int(preview[14, 14]) - FILLED) <= 2  # and the outline was filled
    corners = preview[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.max() < 100


@pytest.mark.parametrize(
    "blank",
    [
        np.zeros((400, 400, 4), np.uint8),  # canvas before the first stroke (transparent)
        canvas(lambda d: None),  # opaque black canvas, nothing drawn
        np.full((50, 50, 3), 255, np.uint8),  # white paper
        np.full((50, 50), 0.4, np.float32),  # one flat grey
    ],
)
def test_empty_drawing_raises_a_clear_error(blank):
    with pytest.raises(sketch.EmptySketchError, match="draw something"):
        sketch.prepare(blank)


@pytest.mark.parametrize(
    "bad", [np.zeros((5, 5, 2)), np.zeros((0, 4)), np.zeros(10), np.full((4, 4), "x"), "a string"]
)
def test_non_image_arrays_are_refused(bad):
    with pytest.raises(sketch.SketchError, match="greyscale, RGB or RGBA"):
        sketch.prepare(bad)


def test_same_input_same_output_and_the_dataset_scale():
    drawing = drawn_square()
    first, second = sketch.prepare(drawing, 16), sketch.prepare(drawing.copy(), 16)
    assert np.array_equal(first.preview, second.preview)
    assert torch.equal(first.tensor, second.tensor)
    assert first.tensor.shape == (1, 1, 16, 16) and first.tensor.dtype == torch.float32
    # Exactly the pipeline the training tensors went through: uint8 28x28 -> data.resize.
    expected = data.resize(torch.from_numpy(first.preview).unsqueeze(0), 16)
    assert torch.equal(first.tensor, expected)
    assert sketch.prepare(drawing, 28).tensor.squeeze().mul(255).round().byte().numpy().tolist() \
        == first.preview.tolist()  # fmt: skip


def test_predict_gives_probabilities_deterministically():
    torch.manual_seed(0)
    model = NotebookCNN(4, 8, 16).eval()
    tensor = sketch.prepare(drawn_square(), 16).tensor
    probs = sketch.predict(model, tensor)
    assert probs.shape == (10,) and probs.sum() == pytest.approx(1, abs=1e-5)
    assert np.array_equal(probs, sketch.predict(model, tensor))


def test_an_answer_is_the_same_for_a_drawing_and_its_mirror_image():
    """predict averages the drawing's and its mirror image's probabilities (a shoe may face
    either way); the page's OOD judge answers with the same probabilities."""
    from fmnist_core import ood

    torch.manual_seed(0)
    model = NotebookCNN(4, 8, 16).eval()
    x = torch.rand(1, 1, 16, 16)
    plain = torch.softmax(model(x), 1)[0]
    flipped = torch.softmax(model(x.flip(-1)), 1)[0]
    assert not torch.allclose(plain, flipped)  # the model itself is not symmetric
    probs = sketch.predict(model, x)
    assert np.allclose(probs, ((plain + flipped) / 2).detach().numpy(), atol=1e-6)
    assert np.allclose(probs, sketch.predict(model, x.flip(-1)), atol=1e-6)
    assert np.allclose(ood.judge(model, x, None).probs, probs, atol=1e-5)


def test_dataset_image_is_not_reframed(tiny_env):
    prepared, label = sketch.dataset_image(13, 28)
    ds = data.load_dataset()
    assert label == int(ds.test_labels[13])
    assert np.array_equal(prepared.preview, ds.test_images[13].numpy())
    assert prepared.tensor.shape == (1, 1, 28, 28)


# ---- uploads -----------------------------------------------------------------------------


def test_valid_png_and_jpeg_uploads_decode():
    image = Image.fromarray(drawn_square())
    assert sketch.read_upload(png_bytes(image)).size == (400, 400)
    assert sketch.read_upload(png_bytes(image.convert("RGB"), "JPEG")).mode == "RGB"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty"),
        (b"this is not an image at all" * 10, "not a PNG or JPEG"),
        (png_bytes(Image.new("RGB", (20, 20)), "GIF"), "not a PNG or JPEG"),
        (png_bytes(Image.fromarray(np.arange(40000, dtype=np.uint8).reshape(200, 200)))[:300],
         "truncated or corrupt"),
    ],
)  # fmt: skip
def test_corrupt_or_foreign_uploads_are_refused(payload, message):
    with pytest.raises(sketch.UploadError, match=message):
        sketch.read_upload(payload)
    with pytest.raises(sketch.UploadError, match=message):
        sketch.prepare(payload)  # bytes go through the same checks


def test_oversized_uploads_are_refused_before_decoding():
    big = png_bytes(Image.new("L", (300, 300)))
    with pytest.raises(sketch.UploadError, match="limit is 0 MB|limit is"):
        sketch.read_upload(big, max_bytes=100)
    with pytest.raises(sketch.UploadError, match=r"300 x 300 pixels; the limit is 10,000"):
        sketch.read_upload(big, max_pixels=10_000)


def test_decompression_bomb_is_refused(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL's own guard, as for a real bomb
    with pytest.raises(sketch.UploadError, match="too many pixels"):
        sketch.read_upload(png_bytes(Image.new("L", (100, 100))))


# ---- the shipped default model ----------------------------------------------------------


def test_export_writes_a_small_run_folder_that_loads(runs_dir, tmp_path, capsys):
    cfg = TrainConfig(epochs=2, conv1=2, conv2=4)
    states = [NotebookCNN(2, 4, 16).state_dict() for _ in range(2)]
    events = [
        EpochEnd(
            e, 2, 1.0, 1.0, 1.0, 0.5 + e / 10, 1.0, float(e), torch.rand(200, 10), states[e - 1]
        )
        for e in (1, 2)
    ]
    rec = RunRecorder.create(cfg, runs_dir)
    list(rec.record(iter([*events, RunEnd("finished", "", 2, 0.7, 2.0)]), torch.arange(200) % 10))
    dest = tmp_path / "default_model"
    assert cli.main(["export", rec.run_id, str(dest), "--runs-dir", str(runs_dir)]) == 0
    shipped = load_run(dest)
    assert shipped.status == "finished" and shipped.epochs == [2] and shipped.config == cfg
    assert shipped.final_val_acc == pytest.approx(0.7)
    model = shipped.load_model()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, states[1][name]), name
    assert sorted(p.name for p in dest.iterdir()) == [
        "config.json", "epoch_002.pt", "history.json", "labels.pt", "probs_002.pt", "status.json"
    ]  # fmt: skip
    assert cli.main(["export", rec.run_id, str(dest), "--runs-dir", str(runs_dir)]) == 1
    assert "not empty" in capsys.readouterr().err


def test_predict_leaves_the_thread_setting_alone():
    before = torch.get_num_threads()
    sketch.predict(NotebookCNN(2, 4, 16).eval(), torch.zeros(1, 1, 16, 16))
    assert torch.get_num_threads() == before


# Clean outlines as a user draws them (unit square, x right, y down), one closed stroke each
# plus the bag's handle; the shipped model must recognise each.
DRAWINGS = {
    "Trouser": [[(0.3, 0.05), (0.7, 0.05), (0.76, 0.95), (0.58, 0.95), (0.5, 0.35),
                 (0.42, 0.95), (0.24, 0.95), (0.3, 0.05)]],
    "T-shirt/top": [[(0.3, 0.1), (0.42, 0.1), (0.5, 0.18), (0.58, 0.1), (0.7, 0.1), (0.95, 0.32),
                     (0.85, 0.45), (0.75, 0.37), (0.75, 0.92), (0.25, 0.92), (0.25, 0.37),
                     (0.15, 0.45), (0.05, 0.32), (0.3, 0.1)]],
    "Bag": [[(0.08, 0.4), (0.92, 0.4), (0.92, 0.9), (0.08, 0.9), (0.08, 0.4)],
            [(0.3, 0.4), (0.32, 0.2), (0.5, 0.13), (0.68, 0.2), (0.7, 0.4)]],
    "Sneaker": [[(0.05, 0.55), (0.17, 0.4), (0.3, 0.44), (0.45, 0.37), (0.62, 0.53),
                 (0.95, 0.63), (0.95, 0.76), (0.05, 0.76), (0.05, 0.55)]],
}  # fmt: skip


def test_shipped_default_model_is_small_loads_and_recognises_simple_drawings():
    shipped = load_run(sketch.DEFAULT_MODEL_DIR)
    assert shipped.status == "finished" and shipped.final_val_acc > 0.88
    assert sum(p.stat().st_size for p in sketch.DEFAULT_MODEL_DIR.iterdir()) < 1_000_000
    model = shipped.load_model()
    for name, strokes in DRAWINGS.items():
        for stroke_width, offset, size in ((12, (40, 40), 320), (5, (200, 30), 150)):

            def draw(d, strokes=strokes, w=stroke_width, o=offset, s=size):
                for stroke in strokes:
                    d.line([(o[0] + s * x, o[1] + s * y) for x, y in stroke], WHITE, w, "curve")

            probs = sketch.predict(model, sketch.prepare(canvas(draw), 28).tensor)
            assert data.CLASSES[int(probs.argmax())] == name, (name, stroke_width, probs.round(2))


def test_dataset_images_are_already_framed_the_way_sketches_are(real_data):
    """The trusted answer: reframing a real test image moves its bounding box by <= 1 px."""

    def box(image: np.ndarray) -> np.ndarray:
        return np.array(bbox(image, level=round(255 * sketch.INK_LEVEL)))

    images = data.load_dataset().test_images[:300].numpy()
    moved = np.array(
        [np.abs(box(sketch.frame_ink(sketch.to_ink(im), fill=False, blur=0)) - box(im)).max()
         for im in images]
    )  # fmt: skip
    assert (moved <= 1).mean() > 0.9 and (moved <= 2).mean() > 0.95


@pytest.mark.parametrize("size", [3, 7, 9])
def test_max_filter_is_a_square_dilation_with_an_empty_edge(size):
    """The in-place dilation against its definition: a pixel is set when any pixel of the
    size x size square around it is (pixels beyond the edge count as empty)."""
    rng = np.random.default_rng(size)
    mask = rng.random((23, 31)) < 0.05
    r = size // 2
    padded = np.pad(mask, r)
    expected = np.zeros_like(mask)
    for dy in range(size):
        for dx in range(size):
            expected |= padded[dy : dy + mask.shape[0], dx : dx + mask.shape[1]]
    assert np.array_equal(sketch._max_filter(mask, size), expected)
