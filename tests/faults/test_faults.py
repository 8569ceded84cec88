"""Fault injection: kills at any moment (inside checkpoint and final-model writes too), full disks, a NaN between
two logging steps, two runs into one folder, --overwrite that fails, signals to a multi-process run.

Every run is the real CLI in a subprocess, training the tiny model on CPU. A kill is a real SIGKILL; to land one
inside a write, ``SFTKIT_TEST_PAUSE`` (sftkit/testhooks.py) makes the process wait at that point until the test
kills it. A full disk is a real small tmpfs, mounted in a private mount namespace (``unshare``); where the
machine does not allow one, those tests skip and say why.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.faults

#: 12 steps, a checkpoint every 4, logging less often than the run is long (a NaN must be caught anyway)
RUN = ["--preset", "tiny", "--set", "train.max_iters=12", "--set", "train.save_steps=4", "--set", "train.logging_steps=50",
       "--set", "train.eval_steps=1000", "--set", "train.save_total_limit=2"]  # fmt: skip


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {"OMP_NUM_THREADS": "1", **os.environ, **(extra or {})}
    env.pop("SFTKIT_TEST_PAUSE", None)
    env.update(extra or {})
    return env


def sftkit(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sftkit", *args], capture_output=True, text=True, env=_env(env), timeout=timeout)


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sftkit", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(env)
    )


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended (exit {proc.returncode}) before {path.name} appeared:\n{proc.stderr.read()[-3000:]}")
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def kill9(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.communicate(timeout=60)


def weights(run: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run / "model" / "model.safetensors"))


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert (wa[key] - wb[key]).abs().max().item() <= 1e-6, key


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """The same run, uninterrupted: what every interrupted and resumed run must end with."""
    run = tmp_path_factory.mktemp("ref") / "straight"
    done = sftkit("train", *RUN, "-o", str(run))
    assert done.returncode == 0, done.stderr
    return run


def test_kill_inside_a_checkpoint_write_resumes_from_the_last_complete_one(straight: Path, tmp_path: Path):
    run = tmp_path / "r"
    proc = start("train", *RUN, "-o", str(run), env={"SFTKIT_TEST_PAUSE": "checkpoint:2"})  # the write of checkpoint-8
    wait_for(run / ".paused-checkpoint", proc)
    kill9(proc)
    assert (run / "checkpoint-8" / "model.safetensors").exists()  # half written: weights, no optimizer state
    resumed = sftkit("train", *RUN, "-o", str(run), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "skipped checkpoint-8: incomplete" in resumed.stderr
    assert json.loads((run / "state.json").read_text())["steps"] == 12
    assert_same_weights(straight, run)


def test_a_kill_inside_the_first_checkpoint_write_restarts_with_the_same_command(straight: Path, tmp_path: Path):
    run = tmp_path / "r"
    proc = start("train", *RUN, "-o", str(run), env={"SFTKIT_TEST_PAUSE": "checkpoint:1"})  # the write of checkpoint-4
    wait_for(run / ".paused-checkpoint", proc)
    kill9(proc)
    # the kill can land later in the same write, after the trainer state and before the completion marker: a run
    # that marks its checkpoints must not read that folder as a complete checkpoint of a run from before the marker
    (run / "checkpoint-4" / "trainer_state.json").write_text("{}", encoding="utf-8")
    again = sftkit("train", *RUN, "-o", str(run))  # the command the user ran, as the hints promise
    assert again.returncode == 0, again.stderr
    assert json.loads((run / "state.json").read_text())["steps"] == 12
    assert_same_weights(straight, run)


def test_a_run_from_before_the_completion_marker_still_resumes(straight: Path, tmp_path: Path):
    run = tmp_path / "r"
    shutil.copytree(straight, run)
    for marker in run.glob("checkpoint-*/sftkit-complete.json"):  # what an older sftkit left: no markers...
        marker.unlink()
    state = json.loads((run / "state.json").read_text())
    state.pop("marks_checkpoints")  # ...and a state that does not promise them
    state["state"] = "interrupted"
    (run / "state.json").write_text(json.dumps(state))
    shutil.rmtree(run / "model")
    resumed = sftkit("train", *RUN, "-o", str(run), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "incomplete" not in resumed.stderr  # its checkpoints count by their trainer state
    assert json.loads((run / "state.json").read_text())["steps"] == 12
    assert_same_weights(straight, run)


def test_kill_inside_the_final_save_never_trains_past_the_end(straight: Path, tmp_path: Path):
    run = tmp_path / "r"
    proc = start("train", *RUN, "-o", str(run), env={"SFTKIT_TEST_PAUSE": "final"})
    wait_for(run / ".paused-final", proc)
    kill9(proc)
    assert not (run / "model").exists() and (run / ".model.tmp").exists()
    resumed = sftkit("train", *RUN, "-o", str(run), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert not (run / ".model.tmp").exists()
    meta = json.loads((run / "model" / "sft_metadata.json").read_text())
    assert meta["steps"] == 12 and json.loads((run / "state.json").read_text())["steps"] == 12
    assert_same_weights(straight, run)


def test_kills_at_random_moments_then_resume_end_with_the_same_weights(straight: Path, tmp_path: Path):
    run = tmp_path / "r"
    rng = random.Random(int(os.environ.get("SFTKIT_FAULT_SEED", "0")) or None)
    for attempt in range(3):
        proc = start("train", *RUN, "-o", str(run), *(["--resume"] if any(run.glob("checkpoint-*/sftkit-complete.json")) else []))
        time.sleep(rng.uniform(2.0, 9.0))  # start-up takes a few seconds; the 12 steps about one
        if proc.poll() is None:
            kill9(proc)
        else:
            proc.communicate()
    for _ in range(2):  # finish: resume, or (killed before any checkpoint) the same command again
        done = sftkit("train", *RUN, "-o", str(run), *(["--resume"] if any(run.glob("checkpoint-*/sftkit-complete.json")) else []))
        if done.returncode == 0 and (run / "model").exists():
            break
        if "already holds a run (finished)" in done.stderr:  # the last attempt got to the end
            break
        assert done.returncode == 0, done.stderr
    assert_same_weights(straight, run)


def test_a_kill_before_the_first_checkpoint_restarts_with_the_same_command(tmp_path: Path):
    run = tmp_path / "r"
    proc = start("train", *RUN, "-o", str(run), env={"SFTKIT_TEST_PAUSE": "model"})
    wait_for(run / ".paused-model", proc)
    kill9(proc)
    resumed = sftkit("train", *RUN, "-o", str(run), "--resume")
    assert resumed.returncode == 2
    assert "same command without --resume" in resumed.stderr  # the hint names a command that works...
    again = sftkit("train", *RUN, "-o", str(run))  # ...and it does, with no --overwrite
    assert again.returncode == 0, again.stderr


def test_sigterm_before_training_says_how_to_start_again(tmp_path: Path):
    run = tmp_path / "r"
    proc = start("train", *RUN, "-o", str(run), env={"SFTKIT_TEST_PAUSE": "model"})
    wait_for(run / ".paused-model", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "same command" in err
    assert json.loads((run / "state.json").read_text())["state"] == "interrupted"
    assert sftkit("train", *RUN, "-o", str(run)).returncode == 0


def test_nan_between_logging_steps_stops_before_anything_is_saved(tmp_path: Path):
    run = tmp_path / "nan"
    done = sftkit("train", *RUN, "-o", str(run), "--set", "train.learning_rate=1e30", "--set", "train.max_grad_norm=0",
                  "--set", "train.warmup_ratio=0")  # fmt: skip
    assert done.returncode == 1, done.stderr
    lines = error_lines(done.stderr)
    assert len(lines) == 1 and "nan" in lines[0].lower() and "step" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not (run / "model").exists() and not list(run.glob("checkpoint-*"))
    assert json.loads((run / "state.json").read_text())["state"] == "failed"


def test_one_run_per_folder(tmp_path: Path):
    run = tmp_path / "r"
    first = start("train", *RUN, "-o", str(run), env={"SFTKIT_TEST_PAUSE": "checkpoint"})
    wait_for(run / ".paused-checkpoint", first)
    second = sftkit("train", *RUN, "-o", str(run), "--overwrite")
    assert second.returncode == 2 and "in use by another sftkit process (pid" in second.stderr, second.stderr
    resumed = sftkit("train", *RUN, "-o", str(run), "--resume")
    assert resumed.returncode == 2 and "in use" in resumed.stderr
    (run / ".paused-checkpoint").unlink()
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert (run / "model").exists()
    # the lock went with the process: the next run in the folder is not refused for it
    again = sftkit("train", *RUN, "-o", str(run), "--resume")
    assert "in use" not in again.stderr


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path: Path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("precious")
    done = sftkit("train", *RUN, "-o", str(folder), "--overwrite")
    assert done.returncode == 2 and "not an sftkit run folder" in done.stderr and "notes.txt" in done.stderr
    assert (folder / "notes.txt").read_text() == "precious"
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_an_overwrite_that_fails_keeps_the_old_run(straight: Path, tmp_path: Path):
    run = tmp_path / "r"
    shutil.copytree(straight, run)
    not_a_model = tmp_path / "empty-model"
    not_a_model.mkdir()
    done = sftkit("train", *RUN, "-o", str(run), "--overwrite", "--set", f"model.name={not_a_model}")
    assert done.returncode != 0
    assert_same_weights(straight, run)
    assert json.loads((run / "state.json").read_text())["state"] == "finished"
    assert not (run / ".replaced").exists()


def test_an_overwrite_replaces_the_run_once_the_new_one_has_a_checkpoint(straight: Path, tmp_path: Path):
    run = tmp_path / "r"
    shutil.copytree(straight, run)
    proc = start("train", *RUN, "-o", str(run), "--overwrite", "--set", "train.learning_rate=1e-3",
                 env={"SFTKIT_TEST_PAUSE": "model"})  # fmt: skip
    wait_for(run / ".paused-model", proc)
    assert (run / ".replaced" / "model").exists() and not (run / "model").exists()  # moved aside, not deleted
    kill9(proc)
    again = sftkit("train", *RUN, "-o", str(run), "--overwrite", "--set", "train.learning_rate=1e-3")
    assert again.returncode == 0, again.stderr
    assert "the previous run was put back" in again.stderr  # the killed attempt left it aside: restored first...
    assert not (run / ".replaced").exists()  # ...then replaced for good by the run that finished
    assert "1e-3" in (run / "sftkit.yaml").read_text() or "0.001" in (run / "sftkit.yaml").read_text()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups and /proc: Linux")
def test_sigterm_to_a_two_process_run_stops_every_rank_at_one_step(tmp_path: Path):
    run = tmp_path / "ddp"
    args = ["train", "--preset", "tiny", "--nproc", "2", "-o", str(run), "--set", "train.max_iters=400", "--set",
            "train.save_steps=1000", "--set", "train.logging_steps=1", "--master-port", str(29600 + os.getpid() % 300)]  # fmt: skip
    proc = start(*args)
    metrics = run / "metrics.jsonl"
    deadline = time.time() + 300
    while not (metrics.exists() and metrics.read_text().count('"loss"') >= 3):
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.time() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    time.sleep(1)
    survivors = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p).count(str(run)) > 0]
    assert not survivors, [_cmdline(p) for p in survivors]
    checkpoints = sorted(run.glob("checkpoint-*"))
    assert len(checkpoints) == 1 and (checkpoints[0] / "sftkit-complete.json").exists()
    assert json.loads((run / "state.json").read_text())["state"] == "interrupted"


def _cmdline(p: Path) -> str:
    try:
        return (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# -- full disks --------------------------------------------------------------------------------------


def _namespaces_work() -> str | None:
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return "needs Linux with unshare(1) for a private tmpfs"
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "d=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs $d"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"this machine does not allow a private tmpfs mount: {probe.stderr.strip()[:120]}"


DRIVER = textwrap.dedent(
    """
    import json, os, subprocess, sys, time
    from pathlib import Path
    disk, stage, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    run_args = json.loads(sys.argv[4])
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk)], check=True)
    run = disk / "run"
    def sftkit(*a, env=None):
        return subprocess.run([sys.executable, "-m", "sftkit", *a], capture_output=True, text=True, env={**os.environ, **(env or {})})
    def fill():
        with open(disk / "filler", "wb") as f:
            try:
                while True:
                    f.write(b"\\0" * (1 << 20)); f.flush()
            except OSError:
                pass
        for size in (1 << 16, 1 << 12, 1):
            try:
                with open(disk / f"filler-{size}", "wb") as f:
                    while True:
                        f.write(b"\\0" * size); f.flush()
            except OSError:
                pass
    result = {}
    if stage == "prepare":
        fill()
        r = sftkit("prepare", "--preset", "tiny", "-o", str(disk / "prepared"))
        result["prepare"] = [r.returncode, r.stderr]
        result["left"] = sorted(p.name for p in disk.iterdir())
    elif stage == "export":
        r = sftkit(*run_args, "-o", str(run))
        fill()
        r = sftkit("export", str(run), "-o", str(disk / "exported"))
        result["export"] = [r.returncode, r.stderr]
        result["left"] = sorted(p.name for p in disk.iterdir())
    else:
        p = subprocess.Popen([sys.executable, "-m", "sftkit", *run_args, "-o", str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env={**os.environ, "SFTKIT_TEST_PAUSE": stage})
        flag = run / f".paused-{stage.split(':')[0]}"
        while not flag.exists() and p.poll() is None:
            time.sleep(0.05)
        fill()
        flag.unlink(missing_ok=True)
        _, err = p.communicate()
        result["first"] = [p.returncode, err]
        result["entries"] = sorted(x.name for x in run.iterdir())
        result["checkpoints"] = {c.name: sorted(x.name for x in c.iterdir()) for c in run.glob("checkpoint-*")}
        for f in disk.glob("filler*"):
            f.unlink()
        r = sftkit(*run_args, "-o", str(run), "--resume")
        result["resume"] = [r.returncode, r.stderr]
        result["model"] = (run / "model" / "model.safetensors").exists()
    out.write_text(json.dumps(result))
    """
)


def full_disk(tmp_path: Path, stage: str) -> dict:
    reason = _namespaces_work()
    if reason:
        pytest.skip(reason)
    disk, out, driver = tmp_path / "disk", tmp_path / "result.json", tmp_path / "driver.py"
    disk.mkdir()
    driver.write_text(DRIVER)
    args = ["train", *RUN]
    subprocess.run(["unshare", "-rm", sys.executable, str(driver), str(disk), stage, str(out), json.dumps(args)],
                   check=True, env=_env(), timeout=900)  # fmt: skip
    return json.loads(out.read_text())


def test_disk_full_in_a_checkpoint(tmp_path: Path):
    r = full_disk(tmp_path, "checkpoint:2")
    code, err = r["first"]
    assert code == 1 and "Traceback" not in err, err
    lines = error_lines(err)
    assert len(lines) == 1 and "disk full" in lines[0] and "checkpoint-8" in lines[0], err
    assert "checkpoint-8" not in r["checkpoints"]  # no partial checkpoint left...
    assert "sftkit-complete.json" in r["checkpoints"]["checkpoint-4"]  # ...and the last complete one untouched
    assert r["resume"][0] == 0, r["resume"][1]  # space freed: --resume finishes the run
    assert r["model"]


def test_disk_full_in_the_final_save(tmp_path: Path):
    r = full_disk(tmp_path, "save")
    code, err = r["first"]
    lines = error_lines(err)
    assert code == 1 and len(lines) == 1 and "disk full" in lines[0] and "final model" in lines[0], err
    assert ".model.tmp" not in r["entries"] and "model" not in r["entries"]
    assert r["resume"][0] == 0, r["resume"][1]
    assert r["model"]


def test_disk_full_in_export(tmp_path: Path):
    r = full_disk(tmp_path, "export")
    code, err = r["export"]
    assert code != 0 and "Traceback" not in err, err
    assert len(error_lines(err)) == 1, err
    assert "exported" not in r["left"]


def test_disk_full_in_prepare(tmp_path: Path):
    r = full_disk(tmp_path, "prepare")
    code, err = r["prepare"]
    lines = error_lines(err)
    assert code == 1 and len(lines) == 1 and "disk full" in lines[0] and "prepared" in lines[0], err
    assert "Traceback" not in err
    assert [n for n in r["left"] if not n.startswith("filler")] == [], r["left"]


def test_a_tokenizer_larger_than_the_embeddings_is_refused_before_training(tmp_path: Path):
    from conftest import shared_path

    tokenizer = shared_path("tokenizers", "smollm2")  # 49k tokens; the tiny model has far fewer embedding rows
    run = tmp_path / "r"
    done = sftkit("train", *RUN, "-o", str(run), "--set", f"model.tokenizer={tokenizer}")
    lines = error_lines(done.stderr)
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert "model.tokenizer" in lines[0] and "embeddings" in lines[0] and "Traceback" not in done.stderr


def test_a_read_only_run_folder_is_one_line(tmp_path: Path):
    if os.geteuid() == 0:
        pytest.skip("root writes to read-only folders")
    run = tmp_path / "ro"
    run.mkdir()
    run.chmod(0o500)
    try:
        done = sftkit("train", *RUN, "-o", str(run))
    finally:
        run.chmod(0o700)
    lines = error_lines(done.stderr)
    assert done.returncode == 2 and len(lines) == 1 and "permission denied" in lines[0], done.stderr
