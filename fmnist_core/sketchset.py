"""A fixed set of synthetic mouse drawings of all ten classes, rendered as the canvas sends them.

    drawings = sketch_set("test")       # list[Drawing]: 24 per class, seeds (17, class): the bench
    drawings = sketch_set("dev")        # another seed and other templates/styles: for choices
    drawings[0].image                   # uint8 (320, 320, 4): opaque black, white strokes

Each drawing picks one of its class's templates (outlines in unit coordinates, x right, y
down), a style and a pen, then draws it the way a hand with a mouse does: polylines with a
slow wobble, round pen ends, anti-aliased. Styles:

- ``outline``: the silhouette only;
- ``detail``: the outline plus what people add (collar, buttons, laces, pockets, hems);
- ``filled``: coloured in with a thick, dense scribble (what a mouse "fill" looks like);
- ``scribble``: the outline plus a sparse zigzag hatching inside.

What a person draws to name the class is drawn in every style (``Template.opened``): a
sandal's straps, a bag's handle, a coat's front opening and collar, a shirt's pointed collar
and button placket; the plain outline of a long-sleeved top is a Pullover (a coat's is also
longer than its sleeves). Without them a Coat, a Pullover and a Shirt were one silhouette in
three styles out of four, which neither a person nor a model can tell apart. A dense fill
(``filled``) still covers interior marks, as the canvas's one white pen does.

Sizes run from a third of the canvas to nearly all of it, placed anywhere, rotated up to
~12 degrees, with aspect jitter. The ``test`` split is the benchmark
(benchmarks/sketch_bench.py); the ``dev`` split has its own seed, its own variants of every
template (moved corners, other proportions) and other pens, so a choice made on ``dev`` is
not a choice tuned on ``test``. Nothing here was fitted to a model's answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from fmnist_core.data import CLASSES

CANVAS_PX = 320  # the Sketch page's canvas (fmnist_app.sketch.CANVAS_PX; a test checks it)
PER_CLASS = 24
STYLES = ("outline", "detail", "filled", "scribble")
SPLITS = {"test": 17, "dev": 1017}  # split -> seed
SUPERSAMPLE = 2  # drawn at 2x and shrunk: anti-aliased like the browser's strokes

Stroke = list[tuple[float, float]]


@dataclass(frozen=True)
class Template:
    outline: list[Stroke]  # closed shapes (the silhouette); the fill styles colour them in
    details: list[Stroke]  # open strokes the ``detail`` style adds (dots: one-point strokes)
    opened: list[Stroke] = ()  # drawn in every style: what names the class (straps, collar)


def _mirror(half: Stroke) -> Stroke:
    """A left half (x <= 0.5, top to bottom) and its mirror image, as one closed outline."""
    return half + [(1 - x, y) for x, y in reversed(half)]


def _buttons(x: float, y0: float, y1: float, n: int) -> list[Stroke]:
    return [[(x, y0 + (y1 - y0) * i / (n - 1))] for i in range(n)]


# fmt: off
TOP_T = _mirror([(0.42, 0.05), (0.30, 0.06), (0.03, 0.30), (0.14, 0.44), (0.24, 0.36),
                 (0.24, 0.97)])
TOP_LONG = _mirror([(0.42, 0.03), (0.30, 0.04), (0.14, 0.14), (0.03, 0.92), (0.15, 0.94),
                    (0.25, 0.38), (0.25, 0.97)])
TOP_COAT = _mirror([(0.42, 0.02), (0.28, 0.04), (0.14, 0.14), (0.04, 0.82), (0.16, 0.84),
                    (0.24, 0.40), (0.22, 0.98)])
TEMPLATES: dict[str, list[Template]] = {
    "T-shirt/top": [
        Template([TOP_T], [[(0.42, 0.05), (0.5, 0.13), (0.58, 0.05)]]),
        Template([_mirror([(0.40, 0.04), (0.30, 0.05), (0.06, 0.26), (0.16, 0.40),
                           (0.26, 0.33), (0.26, 0.96)])],
                 [[(0.40, 0.04), (0.5, 0.22), (0.60, 0.04)], [(0.16, 0.40), (0.26, 0.33)]]),
        Template([_mirror([(0.36, 0.03), (0.30, 0.04), (0.28, 0.30), (0.22, 0.42),
                           (0.22, 0.97)])],  # a tank top
                 [[(0.36, 0.03), (0.5, 0.20), (0.64, 0.03)]]),
    ],
    "Trouser": [
        Template([[(0.30, 0.02), (0.70, 0.02), (0.77, 0.98), (0.56, 0.98), (0.50, 0.28),
                   (0.44, 0.98), (0.23, 0.98)]],
                 [[(0.30, 0.08), (0.70, 0.08)], [(0.5, 0.08), (0.5, 0.24)]]),
        Template([[(0.32, 0.02), (0.68, 0.02), (0.72, 0.98), (0.54, 0.98), (0.50, 0.35),
                   (0.46, 0.98), (0.28, 0.98)]],
                 [[(0.32, 0.07), (0.68, 0.07)], [(0.36, 0.12), (0.42, 0.2)]]),
    ],
    "Pullover": [
        Template([TOP_LONG], [[(0.42, 0.03), (0.5, 0.10), (0.58, 0.03)],
                              [(0.25, 0.90), (0.75, 0.90)], [(0.04, 0.86), (0.15, 0.88)],
                              [(0.96, 0.86), (0.85, 0.88)]]),
        Template([_mirror([(0.40, 0.04), (0.28, 0.06), (0.12, 0.20), (0.05, 0.88),
                           (0.17, 0.90), (0.27, 0.42), (0.27, 0.95)])],
                 [[(0.40, 0.04), (0.5, 0.12), (0.60, 0.04)], [(0.27, 0.88), (0.73, 0.88)]]),
    ],
    "Dress": [
        Template([_mirror([(0.38, 0.02), (0.36, 0.30), (0.12, 0.98)])],
                 [[(0.36, 0.30), (0.64, 0.30)], [(0.38, 0.02), (0.5, 0.10), (0.62, 0.02)]]),
        Template([_mirror([(0.40, 0.02), (0.30, 0.04), (0.22, 0.14), (0.30, 0.18),
                           (0.34, 0.36), (0.18, 0.98)])],
                 [[(0.40, 0.02), (0.5, 0.09), (0.60, 0.02)], [(0.34, 0.36), (0.66, 0.36)]]),
        Template([_mirror([(0.40, 0.02), (0.38, 0.35), (0.30, 0.98)])],  # a straight shift
                 [[(0.38, 0.35), (0.62, 0.35)]]),
    ],
    "Coat": [  # longer than its sleeves; the front opening and collar in every style
        Template([TOP_COAT], [*_buttons(0.45, 0.25, 0.75, 4), [(0.30, 0.62), (0.40, 0.62)],
                              [(0.60, 0.62), (0.70, 0.62)]],
                 [[(0.5, 0.12), (0.5, 0.98)], [(0.42, 0.02), (0.5, 0.12), (0.58, 0.02)]]),
        Template([_mirror([(0.40, 0.02), (0.26, 0.05), (0.13, 0.16), (0.05, 0.80),
                           (0.17, 0.82), (0.25, 0.42), (0.24, 0.98)])],
                 [*_buttons(0.55, 0.40, 0.80, 3)],
                 [[(0.40, 0.02), (0.44, 0.22), (0.5, 0.30)], [(0.60, 0.02), (0.56, 0.22),
                  (0.5, 0.30)], [(0.5, 0.30), (0.5, 0.98)]]),
    ],
    "Sandal": [
        Template([[(0.02, 0.80), (0.98, 0.76), (0.98, 0.90), (0.02, 0.92)]], [],
                 [[(0.18, 0.80), (0.30, 0.45), (0.42, 0.78)], [(0.55, 0.77), (0.68, 0.40),
                  (0.82, 0.76)]]),
        Template([[(0.02, 0.72), (0.30, 0.80), (0.98, 0.80), (0.98, 0.92), (0.04, 0.92)]], [],
                 [[(0.10, 0.74), (0.16, 0.30), (0.28, 0.78)], [(0.40, 0.80), (0.55, 0.35),
                  (0.70, 0.80)], [(0.22, 0.55), (0.60, 0.55)]]),
        Template([[(0.03, 0.55), (0.25, 0.80), (0.97, 0.82), (0.97, 0.94), (0.20, 0.92),
                   (0.03, 0.70)]], [],  # a heeled sandal with an ankle strap
                 [[(0.08, 0.58), (0.14, 0.25), (0.26, 0.62)], [(0.55, 0.82), (0.70, 0.50),
                  (0.88, 0.82)], [(0.14, 0.25), (0.70, 0.50)]]),
    ],
    "Shirt": [  # the pointed collar and the button placket in every style
        Template([TOP_LONG], [*_buttons(0.55, 0.22, 0.85, 5), [(0.30, 0.30), (0.42, 0.30),
                              (0.42, 0.42), (0.30, 0.42), (0.30, 0.30)]],
                 [[(0.40, 0.03), (0.45, 0.14), (0.5, 0.06)], [(0.60, 0.03), (0.55, 0.14),
                  (0.5, 0.06)], [(0.5, 0.10), (0.5, 0.97)]]),
        Template([_mirror([(0.42, 0.03), (0.30, 0.05), (0.06, 0.30), (0.16, 0.44),
                           (0.25, 0.36), (0.25, 0.97)])],  # short sleeves
                 [*_buttons(0.54, 0.25, 0.85, 5)],
                 [[(0.42, 0.03), (0.44, 0.15), (0.5, 0.08)], [(0.58, 0.03), (0.56, 0.15),
                  (0.5, 0.08)], [(0.5, 0.10), (0.5, 0.97)]]),
    ],
    "Sneaker": [
        Template([[(0.03, 0.58), (0.12, 0.42), (0.30, 0.44), (0.42, 0.30), (0.60, 0.48),
                   (0.97, 0.62), (0.98, 0.80), (0.03, 0.80)]],
                 [[(0.03, 0.70), (0.98, 0.70)], [(0.40, 0.36), (0.48, 0.44)],
                  [(0.45, 0.33), (0.53, 0.42)], [(0.50, 0.37), (0.57, 0.45)]]),
        Template([[(0.02, 0.50), (0.20, 0.40), (0.35, 0.42), (0.48, 0.34), (0.70, 0.52),
                   (0.98, 0.60), (0.96, 0.78), (0.05, 0.78)]],
                 [[(0.05, 0.68), (0.97, 0.68)], [(0.20, 0.55), (0.40, 0.60)]]),
    ],
    "Bag": [
        Template([[(0.05, 0.35), (0.95, 0.35), (0.95, 0.95), (0.05, 0.95)]],
                 [[(0.05, 0.50), (0.95, 0.50)], [(0.5, 0.50), (0.5, 0.58)]],
                 [[(0.30, 0.35), (0.33, 0.12), (0.5, 0.06), (0.67, 0.12), (0.70, 0.35)]]),
        Template([[(0.12, 0.45), (0.88, 0.45), (0.97, 0.95), (0.03, 0.95)]],  # a tote
                 [[(0.40, 0.60), (0.60, 0.60)]],
                 [[(0.25, 0.45), (0.30, 0.20), (0.45, 0.15), (0.50, 0.45)],
                  [(0.50, 0.45), (0.55, 0.15), (0.70, 0.20), (0.75, 0.45)]]),
        Template([[(0.15, 0.55), (0.85, 0.55), (0.85, 0.95), (0.15, 0.95)]],  # shoulder bag
                 [[(0.15, 0.68), (0.85, 0.68)]],
                 [[(0.17, 0.55), (0.25, 0.15), (0.5, 0.03), (0.75, 0.15), (0.83, 0.55)]]),
    ],
    "Ankle boot": [
        Template([[(0.15, 0.05), (0.50, 0.05), (0.52, 0.50), (0.90, 0.66), (0.97, 0.80),
                   (0.97, 0.95), (0.05, 0.95), (0.08, 0.70)]],
                 [[(0.05, 0.85), (0.97, 0.85)], [(0.50, 0.12), (0.52, 0.45)]]),
        Template([[(0.20, 0.03), (0.55, 0.03), (0.56, 0.48), (0.95, 0.68), (0.97, 0.92),
                   (0.35, 0.92), (0.30, 0.82), (0.22, 0.92), (0.12, 0.92), (0.14, 0.50)]],
                 [[(0.30, 0.10), (0.48, 0.10)], [(0.35, 0.20), (0.50, 0.25)]]),
    ],
}
# fmt: on


@dataclass(frozen=True)
class Drawing:
    label: int  # index into CLASSES
    style: str  # one of STYLES
    pen: int  # stroke width on the canvas, pixels
    image: np.ndarray  # uint8 (CANVAS_PX, CANVAS_PX, 4), opaque black, white strokes


def _vary(template: Template, rng: np.random.Generator, amount: float) -> Template:
    """The template with every corner moved by up to ``amount`` (the dev split's variants)."""

    def move(stroke: Stroke) -> Stroke:
        return [(x + rng.uniform(-amount, amount), y + rng.uniform(-amount, amount))
                for x, y in stroke]  # fmt: skip

    return Template(*([move(s) for s in strokes] for strokes in (template.outline,
                    template.details, template.opened)))  # fmt: skip


def _place(rng: np.random.Generator, n: int) -> np.ndarray:
    """A 2x3 affine map from the unit box to canvas pixels: size, aspect, rotation, place."""
    size = rng.uniform(0.35, 0.92) * n
    aspect = math.exp(rng.uniform(-0.15, 0.15))
    w, h = size * min(1, aspect), size * min(1, 1 / aspect)
    angle = math.radians(rng.uniform(-12, 12))
    c, s = math.cos(angle), math.sin(angle)
    fit = min(1.0, (n - 10) / (abs(c) * w + abs(s) * h), (n - 10) / (abs(s) * w + abs(c) * h))
    w, h = w * fit, h * fit  # a rotated large drawing still fits on the canvas
    reach = 0.5 * (abs(c) * w + abs(s) * h), 0.5 * (abs(s) * w + abs(c) * h)
    cx = rng.uniform(reach[0] + 4, n - reach[0] - 4)
    cy = rng.uniform(reach[1] + 4, n - reach[1] - 4)
    return np.array([[c * w, -s * h, cx - 0.5 * (c * w - s * h)],
                     [s * w, c * h, cy - 0.5 * (s * w + c * h)]])  # fmt: skip


def _hand(points: np.ndarray, rng: np.random.Generator, wobble: float) -> np.ndarray:
    """A polyline (canvas px) redrawn by hand: points every ~3 px and a slow sideways drift."""
    if len(points) < 2:
        return points
    steps = [
        max(1, int(np.linalg.norm(b - a) / 3)) for a, b in zip(points[:-1], points[1:], strict=True)
    ]
    dense = np.concatenate(
        [
            np.linspace(a, b, k, endpoint=False)
            for a, b, k in zip(points[:-1], points[1:], steps, strict=True)
        ]
        + [points[-1:]]
    )
    drift = np.cumsum(rng.normal(0, 1, dense.shape), axis=0)
    kernel = np.ones(min(9, len(dense))) / min(9, len(dense))
    drift = np.stack([np.convolve(drift[:, i], kernel, mode="same") for i in (0, 1)], axis=1)
    drift -= np.linspace(drift[0], drift[-1], len(drift))  # starts and ends where aimed
    scale = wobble / max(1e-6, np.abs(drift).max())
    return dense + drift * scale


def _line(pen: ImageDraw.ImageDraw, points: np.ndarray, width: int) -> None:
    r = width / 2
    if len(points) > 1:
        pen.line([tuple(p) for p in points], fill=255, width=width, joint="curve")
    for x, y in (points[0], points[-1]):  # round ends, like the canvas's pen
        pen.ellipse((x - r, y - r, x + r, y + r), fill=255)


def _hatch(mask: Image.Image, rng: np.random.Generator, spacing: float, width: int, n: int):
    """Zigzag scribble lines across the canvas, kept only inside ``mask`` (the shape)."""
    layer = Image.new("L", (n, n), 0)
    pen = ImageDraw.Draw(layer)
    angle = rng.uniform(0, math.pi)
    d = np.array([math.cos(angle), math.sin(angle)])
    normal = np.array([-d[1], d[0]])
    centre = np.array([n / 2, n / 2])
    offsets = np.arange(-n, n, spacing)
    zig = [centre + o * normal + t * d for i, o in enumerate(offsets)
           for t in ((-n, n) if i % 2 == 0 else (n, -n))]  # fmt: skip
    pen.line([tuple(p) for p in zig], fill=255, width=width)
    return Image.composite(layer, Image.new("L", (n, n), 0), mask)


def render(template: Template, style: str, width: int, rng: np.random.Generator) -> np.ndarray:
    """One drawing of ``template`` in ``style`` with a pen ``width`` px wide; (N, N, 4) uint8."""
    n = CANVAS_PX * SUPERSAMPLE
    affine = _place(rng, CANVAS_PX) * SUPERSAMPLE
    to_px = lambda stroke: np.asarray(stroke) @ affine[:, :2].T + affine[:, 2]  # noqa: E731
    size = float(np.abs(affine[:, :2]).sum(0).max())
    wobble = rng.uniform(0.005, 0.02) * size
    # Nobody keeps a pen wider than ~1/8 of the item: the drawing would be one blob.
    w = max(SUPERSAMPLE, min(width * SUPERSAMPLE, int(size / 8)))
    ink = Image.new("L", (n, n), 0)
    pen = ImageDraw.Draw(ink)
    shapes = [to_px(s + s[:1]) for s in template.outline]  # closed
    if style in ("filled", "scribble"):
        mask = Image.new("L", (n, n), 0)
        for shape in shapes:
            ImageDraw.Draw(mask).polygon([tuple(p) for p in shape], fill=255)
        dense = style == "filled"
        spacing = w * rng.uniform(0.5, 0.9) if dense else rng.uniform(0.05, 0.12) * size
        line_w = w if dense else max(SUPERSAMPLE, int(w * rng.uniform(0.4, 1.0)))
        ink.paste(255, mask=_hatch(mask, rng, spacing, line_w, n))
    strokes = shapes + [to_px(s) for s in template.opened]
    if style == "detail":
        strokes += [to_px(s) for s in template.details]
    for stroke in strokes:
        _line(pen, _hand(stroke, rng, wobble), w)
    grey = np.asarray(ink.resize((CANVAS_PX, CANVAS_PX), Image.Resampling.BOX))
    out = np.zeros((CANVAS_PX, CANVAS_PX, 4), np.uint8)
    out[..., :3] = grey[..., None]
    out[..., 3] = 255
    return out


def sketch_set(split: str = "test", per_class: int = PER_CLASS) -> list[Drawing]:
    """``per_class`` drawings of every class, the same every time for a split."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    pens = ((3, 7), (8, 15), (16, 29)) if split == "test" else ((2, 6), (6, 13), (13, 25))
    out = []
    for label, name in enumerate(CLASSES):
        rng = np.random.default_rng([SPLITS[split], label])  # a class's templates: its own draws
        templates = TEMPLATES[name]
        for i in range(per_class):
            template = templates[i % len(templates)]
            if split == "dev":
                template = _vary(template, rng, 0.04)
            style = STYLES[(i // len(templates)) % len(STYLES)]
            width = int(rng.integers(*pens[int(rng.integers(3))]))
            out.append(Drawing(label, style, width, render(template, style, width, rng)))
    return out


@dataclass(frozen=True)
class Score:
    """How a model answers a list of drawings (through the Sketch page's pipeline)."""

    top1: np.ndarray  # (10,) share of each class's drawings with the right top answer
    top3: np.ndarray  # (10,) share with the right answer among the top three
    confusion: np.ndarray  # (10, 10) counts: row = true class, column = top answer
    by_style: dict[str, float]  # style -> top-1 share

    @property
    def overall_top1(self) -> float:
        return float(np.trace(self.confusion) / self.confusion.sum())


def score(probs: np.ndarray, drawings: list[Drawing]) -> Score:
    """Score class probabilities ``probs`` (N, 10), one row per drawing, against the labels."""
    labels = np.array([d.label for d in drawings])
    n = len(CLASSES)
    top3 = np.argsort(-probs, axis=1)[:, :3]
    hit1 = top3[:, 0] == labels
    hit3 = (top3 == labels[:, None]).any(1)
    confusion = np.zeros((n, n), int)
    np.add.at(confusion, (labels, top3[:, 0]), 1)

    def per(hits: np.ndarray) -> np.ndarray:
        return np.array([hits[labels == c].mean() if (labels == c).any() else np.nan
                         for c in range(n)])  # fmt: skip

    styles = {s: float(hit1[[d.style == s for d in drawings]].mean()) for s in STYLES
              if any(d.style == s for d in drawings)}  # fmt: skip
    return Score(per(hit1), per(hit3), confusion, styles)
