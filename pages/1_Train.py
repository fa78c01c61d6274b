"""Train: pick hyperparameters, click Train, watch cost and accuracy live; Stop any time.

The training runs in the server's one background job (fmnist_app.jobs); this page only
starts it and polls its snapshot, so a page switch, a refresh or a second tab never stops it.
"""

from types import SimpleNamespace

import streamlit as st
import torch  # noqa: F401 - import torch in the main thread first (see NOTES: numpy race)

from fmnist_app.common import CONFUSION_PAGE, choice, page_setup, plain, plural, show_data_error
from fmnist_app.jobs import JobError, JobSnapshot, job_manager
from fmnist_core import config as C
from fmnist_core import load_dataset
from fmnist_core.plots import training_figure

PRESET_LABELS = {"seed": "Seed notebook", "quick": "Quick look", "strong": "Strong"}
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
SWITCH_LABELS = {"augment": "Augment (flips, shifts)", "amp": "bf16 mixed precision"}
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
EPOCH_COLUMNS = {  # labels and formats for the columns of events.epoch_row
    "cost": st.column_config.NumberColumn("cost", format="%.2f"),
    "train_loss": st.column_config.NumberColumn("train loss", format="%.4f"),
    "val_loss": st.column_config.NumberColumn("val loss", format="%.4f"),
    "val_acc": st.column_config.NumberColumn("val accuracy", format="percent"),
    "seconds": st.column_config.NumberColumn("seconds", format="%.1f"),
    "elapsed_s": st.column_config.NumberColumn("elapsed s", format="%.1f"),
}
FORM_KEY = "train_form"  # the widgets' values, kept across page switches
STATUS_POLL_S, CHART_POLL_S = 2.0, 5.0  # seconds between live updates while training
jobs = job_manager()


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


def on_preset() -> None:
    fill(C.PRESETS[choice("w_preset", C.PRESETS)])  # a forged preset name: the default one


def start() -> None:
    """Train's callback: the form as it is at the click, not as it was last drawn (a click
    right after a change, before the page redrew, used to train the previous settings)."""
    cfg, errors = config_or_errors(n_images)
    try:
        if errors:
            raise JobError("Cannot train with these settings: " + "; ".join(errors))
        jobs.start(cfg)
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


def config_or_errors(n_images: int | None) -> tuple[C.TrainConfig | None, list[str]]:
    """The widgets' config over the chosen preset (which fills fields without widgets)."""
    base = C.PRESETS[choice("w_preset", C.PRESETS)]
    values = {k: st.session_state[f"w_{k}"] for k in base.to_dict() if f"w_{k}" in st.session_state}
    values.pop("name", None)
    errors = C.validation_errors(SimpleNamespace(**{**base.to_dict(), **values}))
    if n_images and values.get("train_subset", 0) > n_images:
        errors.append(f"the dataset has only {n_images:,} training images; choose fewer")
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


def progress(snap: JobSnapshot) -> None:
    cfg = snap.config
    if snap.status == "starting" or not snap.epoch:
        st.progress(0.0, text="Preparing the data and the model ...")
        return
    st.progress(snap.batch / snap.batches, text=f"Epoch {snap.epoch}/{cfg.epochs}: batch "
                f"{snap.batch:,}/{snap.batches:,}")  # fmt: skip
    st.progress(snap.progress, text=f"Overall: {snap.progress:.0%}")
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Images/s", f"{snap.images_per_s:,.0f}")
    m2.metric("ETA", f"{snap.eta_s:.0f} s")
    m3.metric("Elapsed", f"{snap.elapsed_s:.0f} s")
    acc = snap.history[-1]["val_acc"] if snap.history else None
    m4.metric("Val accuracy", f"{acc:.2%}" if acc is not None else "-")


def outcome(snap: JobSnapshot) -> None:
    acc = f"{snap.final_val_acc:.2%}" if snap.final_val_acc is not None else "-"
    done = len(snap.history)
    if snap.status == "finished":
        active = "now the active model" if snap.active else "could not be made active (see log)"
        st.success(f"Finished: validation accuracy **{acc}** after {plural(done, 'epoch')}, "
                   f"{snap.train_s:.1f} s. Saved as run `{snap.run_id}`, {active}.")  # fmt: skip
    elif snap.status == "stopped":
        st.warning(f"Stopped after {plural(done, 'completed epoch')} (accuracy {acc}). Saved as "
                   f"run `{snap.run_id}`; the active model is unchanged (only finished runs "
                   "become active).")  # fmt: skip
    elif snap.status == "failed":
        st.error(f"Training failed: {plain(snap.reason)}. Run `{snap.run_id}` is saved as failed "
                 "and was not made active.")  # fmt: skip
    if done and snap.status in ("finished", "stopped"):
        st.page_link(CONFUSION_PAGE, label="See its confusion matrix", icon=":material/grid_on:")


def epoch_table(snap: JobSnapshot) -> None:
    """The run's epoch rows as recorded (events.EPOCH_ROW_KEYS), formatted for reading."""
    if snap.history:
        st.dataframe(snap.history, hide_index=True, width="stretch", column_config=EPOCH_COLUMNS)


status = page_setup("Train")
st.title("🏋️ Train")
if not status.ok:
    show_data_error(status)
n_images = len(load_dataset().train_labels) if status.ok else None
restore_form()
if "w_preset" not in st.session_state:
    st.session_state.w_preset = next(iter(C.PRESETS))
    on_preset()
st.selectbox("Preset", list(C.PRESETS), key="w_preset", on_change=on_preset,
             format_func=lambda p: PRESET_LABELS.get(p, p.title()),
             help="Fills every setting below with a known recipe; then change any.")  # fmt: skip
preset_note = C.PRESET_NOTES.get(st.session_state.w_preset, "")
st.caption(preset_note[:1].upper() + preset_note[1:])
controls(st.session_state.w_optimizer != "sgd")
save_form()
cfg, errors = config_or_errors(n_images)
snap = jobs.snapshot()
if cfg:
    note = f" Advanced settings in use: {changed}." if (changed := advanced(cfg)) else ""
    st.caption(steps_caption(cfg, n_images) + note)
reason = ("; ".join(errors) if errors else "no dataset - see above" if not status.ok
          else "a training is already running (below)" if snap.running else "")  # fmt: skip
st.button("Train", key="train", type="primary", disabled=bool(reason), on_click=start,
          help=reason or "Train in the background; this page shows it live.")  # fmt: skip
if snap.running:
    st.info("Train is disabled while a training runs: one at a time per server, as it uses "
            "every CPU core. Watch it below (from any tab), stop it, or wait.")  # fmt: skip
elif errors:
    st.warning("Cannot train with these settings: " + "; ".join(errors))
if err := st.session_state.pop("train_error", None):
    st.error(err)


def current(was_running: bool) -> JobSnapshot:
    snap = jobs.snapshot()
    if was_running and not snap.running:
        st.rerun()  # the job ended: redraw the whole page (Train back on) and stop polling
    return snap


# Every poll redraws in the browser, and the browser often shares the CPU with the training:
# watching headless chromium used ~0.5 cores with everything redrawn every 0.5-1 s, of which
# the Plotly chart ~0.4 s CPU per redraw (measured). So the status polls often, the chart less.
@st.fragment(run_every=STATUS_POLL_S if snap.running else None)
def live_status(was_running: bool) -> None:
    snap = current(was_running)
    if snap.config is None:
        st.info("No training in this server yet: pick a preset and click **Train**.")
        return
    st.subheader(f"{'Training' if snap.running else 'Last training'}: run `{snap.run_id or '...'}`")
    st.caption(describe(snap.config) + (f" - on {snap.device}" if snap.device else ""))
    if snap.running:
        st.button("Stop", key="stop", on_click=jobs.stop, disabled=snap.stopping,
                  help="Ends the run before its next batch; finished epochs are kept.")  # fmt: skip
        progress(snap)
    else:
        outcome(snap)


@st.fragment(run_every=CHART_POLL_S if snap.running else None)
def live_chart(was_running: bool) -> None:
    snap = current(was_running)
    if snap.config is not None:
        fig = training_figure(snap.history, snap.losses, snap.config.epochs, snap.batches)
        st.plotly_chart(fig, width="stretch", key="train_chart")
        epoch_table(snap)


live_status(snap.running)
live_chart(snap.running)
