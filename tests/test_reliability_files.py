"""Hostile files in run folders and data folders: FIFOs, decompression bombs, data that loads
but is nonsense, other hosts' runs, left-over temp files and file permissions. Each is
refused (or cleaned) with a message naming the file; memory is bounded by the limits, never
by what a file claims; nothing hangs."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import threading
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest
import torch

from fmnist_core import atomic, cli, data, runs, safeio
from fmnist_core.config import TrainConfig
from fmnist_core.runs import RunError, active_run, load_run, scan_runs, start_run

TINY = TrainConfig(epochs=1, batch_size=100, lr=0.1, name="tiny")
HOUR = 3600


@pytest.fixture(scope="module")
def template(tiny_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished tiny run, trained once for the module; tests copy it."""
    root = tmp_path_factory.mktemp("template-runs")
    rec, events = start_run(TINY, root, None, tiny_data_dir)
    assert list(events)[-1].status == "finished"
    return rec.path


@pytest.fixture
def run_path(template: Path, runs_dir: Path) -> Path:
    path = runs_dir / template.name
    shutil.copytree(template, path)
    return path


def _copy(run_path: Path, suffix: str) -> Path:
    other = run_path.with_name(run_path.name + suffix)
    shutil.copytree(run_path, other)
    return other


def _set_status(folder: Path, **changes) -> None:
    info = json.loads((folder / "status.json").read_text())
    (folder / "status.json").write_text(json.dumps({**info, **changes}))


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _in_thread_or_unblock(fn, fifo: Path):
    """Run ``fn``; if it is still blocked (on the FIFO) after a generous deadline, open the
    FIFO's other end so it returns, and fail. Returns fn's result."""
    result: dict[str, object] = {}
    thread = threading.Thread(target=lambda: result.update(value=fn()), daemon=True)
    thread.start()
    thread.join(timeout=60)
    if thread.is_alive():
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # a reader is blocked: this succeeds
        os.close(fd)  # EOF for the blocked reader
        thread.join(timeout=60)
        pytest.fail(f"reading {fifo} blocked (a FIFO must be refused, not opened)")
    return result.get("value")


# --- item 3: a FIFO never hangs the listing or a page -----------------------------------


@pytest.mark.parametrize("name", ["config.json", "status.json", "events.jsonl", "labels.pt"])
def test_a_fifo_in_a_run_folder_is_refused_without_hanging(name, run_path, runs_dir):
    good = _copy(run_path, "-good")
    loaded = load_run(run_path)  # a page that listed the run before the FIFO appeared
    fifo = run_path / name
    fifo.unlink()
    os.mkfifo(fifo)
    found, warnings = _in_thread_or_unblock(lambda: scan_runs(runs_dir), fifo)
    assert [r.id for r in found] == [good.name]
    assert len(warnings) == 1 and run_path.name in warnings[0] and name in warnings[0]
    if name == "labels.pt":  # read by the Confusion page and evaluate
        error = _in_thread_or_unblock(lambda: _error_of(loaded.labels), fifo)
        assert "labels.pt is not a regular file" in error


def _error_of(fn) -> str:
    try:
        fn()
    except RunError as exc:
        return str(exc)
    return "no error"


# --- item 3: another host's run ----------------------------------------------------------


def test_another_hosts_run_is_running_until_quiet_for_hours_then_interrupted(run_path, runs_dir):
    fresh, stale = _copy(run_path, "-fresh"), _copy(run_path, "-stale")
    for folder in (fresh, stale):
        _set_status(folder, status="running", host="elsewhere", pid=4242, proc_start="99")
    for path in (stale / "status.json", stale / "events.jsonl", stale):  # the log grows in place
        _age(path, runs.STALE_RUN_S + HOUR)
    found = {r.id: r for r in scan_runs(runs_dir)[0]}
    assert found[fresh.name].status == "running"
    assert "running on elsewhere?" in found[fresh.name].label()
    assert found[stale.name].status == "interrupted"
    assert "interrupted (on elsewhere)" in found[stale.name].label()
    assert found[run_path.name].status_text == "finished"


# --- item 4: decompression bombs ---------------------------------------------------------


def _deflated_torch_file(obj, path: Path) -> None:
    """torch.save ``obj``, then re-zip every entry deflated: a small file whose entries
    declare their full size (a tensor view saves its whole storage)."""
    plain = io.BytesIO()
    torch.save(obj, plain)
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for name in src.namelist():
            out.writestr(name, src.read(name))


def _bomb(name: str, run: runs.Run):
    """A valid-looking object for ``name`` whose storage is 8 MB of zeros."""
    if name == "labels.pt":
        return torch.zeros(8_000_000, dtype=torch.uint8)[: len(run.labels())]
    if name == "probs_001.pt":
        return torch.zeros(800_000, 10).half()[: len(run.labels())]
    state = run.load_model().state_dict()
    big = torch.zeros(2_000_000)
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key] = big[: state[key].numel()].view_as(state[key])
    return state


@pytest.mark.parametrize("name", ["labels.pt", "probs_001.pt", "epoch_001.pt"])
def test_a_small_file_declaring_a_large_content_is_refused_before_torch_reads_it(
    name, run_path, monkeypatch
):
    run = load_run(run_path)
    path = run_path / name
    _deflated_torch_file(_bomb(name, run), path)
    assert path.stat().st_size < 100_000  # small on disk, 8 MB declared
    bomb, read = path.read_bytes(), []
    real_load = torch.load

    def spy(source, *args, **kwargs):
        content = source.getvalue() if isinstance(source, io.BytesIO) else Path(source).read_bytes()
        read.append(content == bomb)
        return real_load(io.BytesIO(content), *args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    loads = {"labels.pt": run.labels, "probs_001.pt": run.probs, "epoch_001.pt": run.load_model}
    with pytest.raises(RunError, match=f"{name} declares [0-9,]+ bytes of content, more than"):
        loads[name]()
    assert True not in read  # the bomb never reached torch.load


def test_a_weights_file_larger_than_its_limit_is_refused_unread(run_path):
    path = run_path / "probs_001.pt"
    with path.open("wb") as f:
        f.truncate(512 * 1024 * 1024)  # sparse: 512 MB that would be read into memory
    tracemalloc.start()
    try:
        with pytest.raises(RunError, match="probs_001.pt is 536,870,912 bytes, more than"):
            load_run(run_path).probs()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024


def _gz(path: Path, size: int) -> None:
    with gzip.open(path, "wb", compresslevel=1) as f:
        for _ in range(size // (1 << 20)):
            f.write(bytes(1 << 20))


def test_a_gz_bomb_is_stopped_at_the_file_limit_with_bounded_memory_and_no_leftover(tmp_path):
    src, dest = tmp_path / "gz", tmp_path / "out"
    src.mkdir()
    names = list(data.FILES.values())
    for name in names:
        _gz(src / f"{name}.gz", 0)  # empty, unpacked before the bomb is reached
    bomb = data.FILES["train_labels"]  # may hold 60,008 bytes
    _gz(src / f"{bomb}.gz", 64 << 20)  # 64 MB of zeros in ~64 KB
    assert (src / f"{bomb}.gz").stat().st_size < 1 << 20
    dest.mkdir()
    tracemalloc.start()
    try:
        with pytest.raises(data.DataError, match=f"{bomb}.gz unpacks to more than the 60,008"):
            data._unpack(src, dest)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20
    assert not (dest / bomb).exists()
    assert [p.name for p in dest.iterdir() if p.name.endswith(".tmp")] == []


def test_an_oversized_idx_file_is_refused_unread(tmp_path):
    path = tmp_path / data.FILES["test_labels"]
    with path.open("wb") as f:
        f.truncate(256 * 1024 * 1024)  # sparse
    tracemalloc.start()
    try:
        with pytest.raises(data.DataError, match="more than the 10,008 bytes allowed"):
            data.read_idx(path, images=False, max_count=data.MAX_IMAGES["test"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def test_an_idx_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / data.FILES["test_labels"]
    os.mkfifo(fifo)

    def read() -> str:
        try:
            data.read_idx(fifo, images=False)
        except data.DataError as exc:
            return str(exc)
        return "no error"

    assert "not a regular file" in _in_thread_or_unblock(read, fifo)


# --- item 5: files that load but hold nonsense -------------------------------------------


def _nan_weights(run: runs.Run) -> dict:
    state = run.load_model().state_dict()
    return {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
            for k, v in state.items()}  # fmt: skip


# name -> (what to save instead, message)
NONSENSE = {
    "labels outside 0-9": ("labels.pt", lambda r: r.labels() + 12, "labels outside 0-9"),
    "labels negative": ("labels.pt", lambda r: r.labels() - 1, "labels outside 0-9"),
    "labels as floats": ("labels.pt", lambda r: r.labels().float(), "not hold the test labels"),
    "labels empty": ("labels.pt", lambda r: torch.zeros(0, dtype=torch.long), "test labels"),
    "weights a bare tensor": ("epoch_001.pt", lambda r: torch.zeros(3), "not hold model weights"),
    "weights with non-tensors": ("epoch_001.pt", lambda r: {"a": 1}, "not hold model weights"),
    "weights full of NaN": ("epoch_001.pt", _nan_weights, "NaN or infinite"),
    "probs NaN": ("probs_001.pt", lambda r: r.probs() * float("nan"), "not probabilities"),
    "probs above 1": ("probs_001.pt", lambda r: r.probs() + 2, "not probabilities"),
    "probs integers": ("probs_001.pt", lambda r: r.probs().long(), "test predictions"),
}


@pytest.mark.parametrize("case", list(NONSENSE))
def test_files_that_load_but_hold_nonsense_are_refused_with_a_message(
    case, run_path, runs_dir, capsys
):
    name, make, message = NONSENSE[case]
    run = load_run(run_path)
    torch.save(make(run), run_path / name)
    use = {"labels.pt": run.labels, "probs_001.pt": run.probs, "epoch_001.pt": run.load_model}
    with pytest.raises(RunError, match=message) as caught:
        use[name]()
    assert name in str(caught.value)
    if name != "epoch_001.pt":  # evaluate reads labels and predictions, not weights
        assert cli.main(["evaluate", run.id, "--runs-dir", str(runs_dir)]) == 1
        err = capsys.readouterr().err
        assert name in err and "Traceback" not in err


# --- item 9: temp files and permissions --------------------------------------------------


def test_stale_temp_files_are_cleaned_and_live_writers_ones_kept(run_path, runs_dir):
    live = _copy(run_path, "-live")  # running here, in this very process
    _set_status(live, status="running", pid=os.getpid(), proc_start=None)
    remote = _copy(run_path, "-remote")  # running on another host, recently updated
    _set_status(remote, status="running", host="elsewhere", pid=4242)
    temps = {
        "root fresh": runs_dir / f".{runs.ACTIVE_FILE}.fresh.tmp",
        "root old": runs_dir / f".{runs.ACTIVE_FILE}.old.tmp",
        "live fresh": live / ".history.json.fresh.tmp",
        "live old": live / ".history.json.old.tmp",
        "remote fresh": remote / ".epoch_002.pt.fresh.tmp",
        "remote old": remote / ".epoch_002.pt.old.tmp",
        "finished": run_path / ".model.pt.any.tmp",  # its writer is done with it
    }
    for path in temps.values():
        path.write_bytes(b"half a write")
    for key, path in temps.items():
        if key.endswith("old"):
            _age(path, runs.TEMP_STALE_S + 60)
    other = runs_dir / ".not-ours.tmp"  # not an atomic write's name: never touched
    other.write_bytes(b"x")
    _age(other, 10 * HOUR)
    found, warnings = scan_runs(runs_dir)
    assert warnings == [] and len(found) == 3
    left = {key for key, path in temps.items() if path.exists()}
    assert left == {"root fresh", "live fresh", "remote fresh"}
    assert other.exists()


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_new_files_get_the_umasks_permissions(umask, mode, tmp_path, runs_dir):
    old = os.umask(umask)
    try:
        rec = runs.RunRecorder.create(TINY, runs_dir)
        runs.set_active(rec.run_id, runs_dir)
        atomic.atomic_torch_save(tmp_path / "w.pt", {"x": torch.zeros(1)})
    finally:
        os.umask(old)
    files = [*rec.path.iterdir(), runs_dir / runs.ACTIVE_FILE, tmp_path / "w.pt"]
    assert {f.name: oct(f.stat().st_mode & 0o777) for f in files} == {
        f.name: oct(mode) for f in files
    }


def test_unpacked_dataset_files_get_normal_permissions(tmp_path):
    src, dest = tmp_path / "gz", tmp_path / "out"
    src.mkdir()
    for name in data.FILES.values():
        _gz(src / f"{name}.gz", 0)
    old = os.umask(0o022)
    try:
        data._unpack(src, dest)
    finally:
        os.umask(old)
    assert {oct(p.stat().st_mode & 0o777) for p in dest.iterdir()} == {oct(0o644)}


def test_active_json_that_is_a_fifo_falls_back_without_hanging(run_path, runs_dir):
    fifo = runs_dir / runs.ACTIVE_FILE
    os.mkfifo(fifo)
    found = _in_thread_or_unblock(lambda: active_run(runs_dir), fifo)
    assert found is not None and found.id == run_path.name


def test_read_regular_refuses_devices_and_reads_small_files(tmp_path):
    with pytest.raises(safeio.FileRefused, match="not a regular file"):
        safeio.read_regular("/dev/zero", 10)
    (tmp_path / "f").write_bytes(b"abc")
    assert safeio.read_regular(tmp_path / "f", 3) == b"abc"
    with pytest.raises(safeio.FileRefused, match="more than the 2 bytes allowed"):
        safeio.read_regular(tmp_path / "f", 2)
