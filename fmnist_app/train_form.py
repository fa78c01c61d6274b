"""The Train page's settings form: presets, every widget (keyed ``w_<field>``), the config
they make, and the one-line summaries of it. Values live in st.session_state.
"""

from __future__ import annotations

from types import SimpleNamespace

import streamlit as st
import torch

from fmnist_app.common import choice, plural
from fmnist_app.jobs import JobError, job_manager
from fmnist_core import config as C
from fmnist_core.launch import MAX_PROCESSES

PRESET_LABELS = {
    "seed": "Seed notebook",
    "quick": "Quick look",
    "strong": "Strong",
    "sketch": "Sketch",
}
LR_VALUES = sorted(
    {round(m * 10.0**e, 6) for e in range(-4, 1) for m in (1, 1.5, 2, 3, 5, 7) if m * 10.0**e <= 1}
    | {p.lr for p in C.PRESETS.values()}
)
BATCH_VALUES = sorted({16, 32, 50, 64, 100, 128, 200, 256, 500, 512, 1024}
                      | {p.batch_size for p in C.PRESETS.values()})  # fmt: skip
SUBSET_VALUES = [
    *sorted({100, 200, 500, 1000, 2000, 3000, 5000, 6000, 10_000, 20_000, 30_000}
            | {p.train_subset for p in C.PRESETS.values()} - {0}),
    0,
]  # fmt: skip
WD_VALUES = sorted({0.0, 1e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1}
                   | {p.weight_decay for p in C.PRESETS.values()})  # fmt: skip
SWITCH_LABELS = {
    "augment": "Augment (flips, shifts)",
    "amp": "bf16 mixed precision",
    "tta": "Test with flips (TTA)",
    "sketch_augment": "Drawing-like images",
}
ADVANCED = ("arch", "schedule", "weight_decay", "label_smoothing", *C.SWITCHES, "device")
HELP = {
    "epochs": "Passes over the training set. Each adds one point to the chart.",
    "lr": "Step size of the optimizer, on a log scale. Too high diverges; too low learns slowly.",
    "batch_size": "Images per gradient step. Smaller: more (noisier) steps per epoch, slower.",
    "image_size": "16 = the notebook's downscaled images (fast); 28 = the original pixels.",
    "conv1": "Filters (channels) of the first 5x5 convolution.",
    "conv2": "Filters (channels) of the second convolution.",
    "optimizer": "SGD: plain steps. SGD + momentum: remembers past steps. Adam/AdamW: adaptive.",
    "momentum": "Used by SGD + momentum, and as beta1 by Adam/AdamW; plain SGD ignores it.",
    "train_subset": "Train on fewer images (stratified by class) for quick runs; all = 60,000.",
    "seed": "Same seed and settings, same numbers: the run is reproducible.",
    "arch": "notebook = the classic 2-conv CNN; bn3 = 3 conv blocks with batch-norm (slower).",
    "schedule": "constant learning rate, or onecycle (warm up, then anneal to ~0).",
    "weight_decay": "L2 penalty on the weights (0 = none).",
    "label_smoothing": "Softens the targets of the cross-entropy (0 = none).",
    "device": "auto picks a CUDA GPU when there is one.",
}
FORM_KEY = "train_form"  # the widgets' values, kept across page switches
RUN_ON = {"thread": "one process (default)", "torchrun": "N processes (torchrun)"}
RUN_ON_HELP = (
    "One training process started and followed by this server (the default), or one "
    "model trained by several processes with PyTorch's DistributedDataParallel (torchrun, "
    "gloo on the CPU, one GPU each on CUDA). The global batch stays the Batch size; each "
    "process takes its share. On a CPU, processes only pay off with spare cores."
)
NAME_MAX = 100  # fmnist_core.runs.NAME_MAX: a run name's length


def fill(cfg: C.TrainConfig) -> None:
    """Put a config's values into the widgets (the preset selector's job)."""
    for name, value in cfg.to_dict().items():
        if name != "name":
            st.session_state[f"w_{name}"] = value


def save_form() -> None:
    """Copy the widgets' values aside: Streamlit forgets a widget's state on pages that do not
    draw it, so the form would be reset after a visit to another page."""
    state = st.session_state
    state[FORM_KEY] = {k: v for k, v in state.items() if str(k).startswith("w_")}


def restore_form() -> None:
    """Put back only the values Streamlit forgot. Writing every widget back on every run (the
    usual trick) raced with the user: a change made while the page redrew could be undone."""
    for key, value in st.session_state.get(FORM_KEY, {}).items():
        if key not in st.session_state:
            st.session_state[key] = value


CUSTOM = "custom"  # the preset selector's value once a setting differs from its preset
PRESET_OPTIONS = (*C.PRESETS, CUSTOM)


def base_name() -> str:
    """The preset the form started from (kept while the selector says "Custom")."""
    picked = choice("w_preset", PRESET_OPTIONS)
    return picked if picked != CUSTOM else choice("w_preset_base", C.PRESETS)


def settings_changed_since_drawn() -> bool:
    """Whether a setting differs from the value the page last drew (``save_form``'s copy)."""
    drawn, state = st.session_state.get(FORM_KEY, {}), st.session_state
    keys = (f"w_{k}" for k in C.TrainConfig().to_dict() if k != "name")
    return any(k in drawn and k in state and state[k] != drawn[k] for k in keys)


def on_preset() -> None:
    """The preset selector's callback: every widget to the picked preset ("Custom": none).

    A pick that arrives together with a change of a setting is no pick: the page had set the
    selector to "Custom" in the redraw after an earlier change, and the browser, sending the
    next change before it drew that, echoed the selector's old value. Applying it reset the
    form under the user and lost the change (``mark_custom`` puts "Custom" back)."""
    if settings_changed_since_drawn():
        return
    if choice("w_preset", PRESET_OPTIONS) != CUSTOM:  # a forged name: the default preset
        st.session_state.w_preset = st.session_state.w_preset_base = base_name()
        fill(C.PRESETS[base_name()])


def reset_preset() -> None:
    """ "Reset to preset": the preset the form started from, every widget back to it."""
    st.session_state.w_preset = base_name()
    on_preset()


def changed_fields() -> list[str]:
    """The settings whose widget differs from the form's preset (in the config's order)."""
    base, state = C.PRESETS[base_name()], st.session_state
    return [k for k, v in base.to_dict().items()
            if k != "name" and f"w_{k}" in state and state[f"w_{k}"] != v]  # fmt: skip


def mark_custom() -> None:
    """Before the selector is drawn: "Custom (from ...)" once a value differs, the preset
    again once every value is back (picking the preset again then resets the form)."""
    custom = bool(changed_fields())
    st.session_state.w_preset = CUSTOM if custom else base_name()


def preset_labels() -> dict[str, str]:
    """The selector's labels, fixed for this run (a format_func reading the session later
    would label an option differently from how it was drawn); the custom entry says which
    preset it started from: 'Custom (from Seed notebook)'."""
    labels = {name: PRESET_LABELS.get(name, name.title()) for name in C.PRESETS}
    return labels | {CUSTOM: f"Custom (from {labels[base_name()]})"}


def start(n_images: int | None) -> None:
    """Train's callback: the form as it is at the click, not as it was last drawn (a click
    right after a change, before the page redrew, used to train the previous settings)."""
    cfg, errors = config_or_errors(n_images)
    try:
        if errors:
            raise JobError("Cannot train with these settings: " + "; ".join(errors))
        job_manager().start(
            cfg, name=str(st.session_state.get("w_run_name") or ""), processes=processes()
        )
        st.session_state.pop("train_error", None)
    except JobError as exc:
        st.session_state.train_error = str(exc)


def controls(momentum_used: bool) -> None:
    """Every widget, keyed ``w_<field>``; values live in session_state."""
    c1, c2, c3 = st.columns(3)
    c1.slider("Epochs", *C.RANGES["epochs"][:2], key="w_epochs", help=HELP["epochs"])
    c1.select_slider("Learning rate (log scale)", LR_VALUES, key="w_lr", help=HELP["lr"],
                     format_func=lambda v: f"{v:g}")  # fmt: skip
    c1.select_slider("Batch size", BATCH_VALUES, key="w_batch_size", help=HELP["batch_size"])
    c2.radio("Image size", C.IMAGE_SIZES, key="w_image_size", horizontal=True,
             format_func=lambda s: f"{s}x{s}", help=HELP["image_size"])  # fmt: skip
    c2.slider("conv1 channels", *C.RANGES["conv1"][:2], key="w_conv1", help=HELP["conv1"])
    c2.slider("conv2 channels", *C.RANGES["conv2"][:2], key="w_conv2", help=HELP["conv2"])
    c3.selectbox("Optimizer", C.OPTIMIZERS, key="w_optimizer", help=HELP["optimizer"],
                 format_func=C.OPTIMIZER_LABELS.get)  # fmt: skip
    c3.slider("Momentum", *C.RANGES["momentum"][:2], step=0.01, key="w_momentum",
              disabled=not momentum_used, help=HELP["momentum"])  # fmt: skip
    c3.select_slider("Training images", SUBSET_VALUES, key="w_train_subset",
                     format_func=lambda n: f"{n:,}" if n else "all",
                     help=HELP["train_subset"])  # fmt: skip
    c3.number_input("Random seed", *C.RANGES["seed"][:2], step=1, key="w_seed", help=HELP["seed"])
    with st.expander("Advanced: architecture, schedule, regularisation, device"):
        a1, a2, a3 = st.columns(3)
        a1.radio("Architecture", C.ARCHS, key="w_arch", horizontal=True, help=HELP["arch"])
        a1.radio("LR schedule", C.SCHEDULES, key="w_schedule", horizontal=True,
                 help=HELP["schedule"])  # fmt: skip
        a2.select_slider("Weight decay", WD_VALUES, key="w_weight_decay",
                         format_func=lambda v: f"{v:g}", help=HELP["weight_decay"])  # fmt: skip
        a2.slider("Label smoothing", *C.RANGES["label_smoothing"][:2], step=0.01,
                  key="w_label_smoothing", help=HELP["label_smoothing"])  # fmt: skip
        for name, what in C.SWITCHES.items():
            a3.toggle(SWITCH_LABELS.get(name, name), key=f"w_{name}", help=what)
        devices = C.DEVICES if torch.cuda.is_available() else ("auto", "cpu")
        a3.selectbox("Device", devices, key="w_device", help=HELP["device"])


def run_on() -> None:
    """Where the training runs: this server's thread, or N torchrun processes."""
    st.session_state.setdefault("w_run_on", "thread")
    st.session_state.setdefault("w_processes", 2)
    where, count = st.columns([2, 1])
    where.radio("Run on", list(RUN_ON), key="w_run_on", format_func=RUN_ON.get,
                horizontal=True, help=RUN_ON_HELP)  # fmt: skip
    count.number_input("Processes", 2, MAX_PROCESSES, step=1, key="w_processes",
                       disabled=choice("w_run_on", RUN_ON) != "torchrun",
                       help="torchrun processes on this machine (--nproc-per-node)")  # fmt: skip


def processes() -> int:
    """1 for this server's thread, else the number of torchrun processes asked for."""
    if choice("w_run_on", RUN_ON) != "torchrun":
        return 1
    n = st.session_state.get("w_processes", 2)
    ok = isinstance(n, int) and not isinstance(n, bool) and 2 <= n <= MAX_PROCESSES
    return n if ok else 2


def config_or_errors(n_images: int | None) -> tuple[C.TrainConfig | None, list[str]]:
    """The widgets' config over the chosen preset (which fills fields without widgets)."""
    base = C.PRESETS[base_name()]
    values = {k: st.session_state[f"w_{k}"] for k in base.to_dict() if f"w_{k}" in st.session_state}
    values.pop("name", None)
    errors = C.validation_errors(SimpleNamespace(**{**base.to_dict(), **values}), C.LABELS)
    if n_images and values.get("train_subset", 0) > n_images:
        errors.append(f"the dataset has only {n_images:,} training images; choose fewer "
                      "Training images")  # fmt: skip
    if errors:
        return None, errors
    cfg = base.replace(**values)
    return cfg.replace(name=base.name if cfg == base else f"{base.name}+"), []


def steps_caption(cfg: C.TrainConfig, n_images: int | None) -> str:
    n = cfg.train_subset or n_images or C.MAX_TRAIN
    steps = -(-n // cfg.batch_size)
    last = n - (steps - 1) * cfg.batch_size
    tail = "" if last == cfg.batch_size else f" (the last one has {last})"
    total = plural(steps * cfg.epochs, "step")
    return (f"{n:,} training images in batches of {cfg.batch_size} = {plural(steps, 'step')} "
            f"per epoch{tail}; {total} in {plural(cfg.epochs, 'epoch')}.")  # fmt: skip


def advanced(cfg: C.TrainConfig) -> str:
    """The advanced settings that differ from the defaults, e.g. 'schedule onecycle, augment'."""
    default = C.TrainConfig()
    changed = [k for k in ADVANCED if getattr(cfg, k) != getattr(default, k)]
    return ", ".join(SWITCH_LABELS.get(k, k) if k in C.SWITCHES
                     else f"{k.replace('_', ' ')} {getattr(cfg, k):g}" if k in C.FRACTIONAL
                     else f"{k} {getattr(cfg, k)}" for k in changed)  # fmt: skip


def describe(cfg: C.TrainConfig) -> str:
    subset = f"{cfg.train_subset:,} images" if cfg.train_subset else "all images"
    extra = f", {changed}" if (changed := advanced(cfg)) else ""
    return (f"{cfg.name}: {cfg.image_size}x{cfg.image_size}, conv {cfg.conv1}/{cfg.conv2}, "
            f"{C.OPTIMIZER_LABELS[cfg.optimizer]} lr {cfg.lr:g}, batch {cfg.batch_size}, "
            f"{plural(cfg.epochs, 'epoch')}, {subset}, seed {cfg.seed}{extra}")  # fmt: skip
