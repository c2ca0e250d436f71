"""Ray under faults, against a real local Ray head (``ray start --head`` on 127.0.0.1).

The search runs as ``assemblenet search ... --executor ray --ray-address 127.0.0.1:PORT`` in a subprocess, with
the toy fitness sleeping so that trials are in flight. Faults are real SIGKILLs:

- a Ray worker running a trial: the trial is retried (same fitness as a run without the fault), or, with
  ``executor.max_retries: 0``, recorded as a failed evaluation; the search completes either way;
- the driver (the search process) mid-search: rerunning the same command resumes, with the same records as an
  uninterrupted run and no finished evaluation run again.

Everything stays on 127.0.0.1 (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` stops Ray from swapping 127.0.0.1 for
the machine's network address), and the head uses token authentication with a token of this module. The
head's processes are found by a per-module tag in their environment, its temporary folder and GCS address, and
descent; teardown SIGKILLs exactly those (as ``ray stop --force`` does). It does not call ``ray stop``, which
kills every Ray instance on the machine, other users' clusters included. Every wait has a deadline.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from assemblenet.search.config import load_search_config
from assemblenet.search.evolution import SearchRunner
from assemblenet.search.store import RunStore

from .conftest import assert_same_sequence, run_sequence

pytest.importorskip("ray", reason="needs the optional ray install (pip install 'assemblenet[ray]')")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds Ray workers through /proc"),
    pytest.mark.skipif(shutil.which("ray") is None, reason="needs the ray command line of the optional ray install"),
]

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
TINY_YAML = REPO / "configs" / "search" / "tiny.yaml"
TAG_VARIABLE = "ASSEMBLENET_RAY_FAULTS_TAG"
TRIAL_TITLE = "ray::run_trial"  # the process title of a Ray worker while it runs executors.run_trial
RUN = "evolution-seed0"


@dataclass(frozen=True)
class RayHead:
    address: str
    env: dict[str, str]
    tag: str
    temp_dir: str


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _live_processes() -> dict[int, tuple[int, str, bytes, bytes]]:
    """pid -> (parent pid, title, cmdline, environ) of every live (not zombie) process we may read."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if state in ("Z", "X"):
            continue
        table[int(entry.name)] = (int(ppid), cmdline.split(b"\0")[0].decode(errors="replace").strip(), cmdline, environ)
    return table


def _head_processes(head: RayHead) -> dict[int, str]:
    """pid -> process title of every process of our Ray head, its workers and our drivers.

    A process is ours if its environment holds our tag, or its command line names our temporary folder or
    our GCS address, or it descends from such a process. (One test is not enough: Ray rewrites process
    titles, which can overwrite the environment that /proc shows.)
    """
    table = _live_processes()
    tag = f"{TAG_VARIABLE}={head.tag}".encode()
    named = re.compile(re.escape(head.temp_dir.encode()) + b"|" + re.escape(head.address.encode()) + rb"(?!\d)")
    ours = {pid for pid, (_, _, cmdline, environ) in table.items()
            if tag in environ.split(b"\0") or named.search(cmdline)}
    ours.discard(os.getpid())
    grew = True
    while grew:
        children = {pid for pid, (ppid, *_) in table.items() if ppid in ours and pid != os.getpid()}
        grew = not children <= ours
        ours |= children
    return {pid: table[pid][1] for pid in ours}


def _kill_head(head: RayHead, *, timeout: float = 20.0) -> None:
    """SIGKILL every process of our head (as ``ray stop --force`` would, but only ours), until none is left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = _head_processes(head)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    raise AssertionError(f"Ray head processes still alive after {timeout} s: {_head_processes(head)}")


@pytest.fixture(scope="module")
def ray_head():
    tag = uuid.uuid4().hex
    temp_dir = tempfile.mkdtemp(prefix="asn-ray-", dir="/tmp")  # short: Ray's socket paths live under it
    env = {key: value for key, value in os.environ.items()
           if key not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN_PATH")}
    env.update({
        "PYTHONPATH": os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH", "")) if p),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # keep 127.0.0.1 as the node address
        "RAY_USAGE_STATS_ENABLED": "0",
        # Token authentication with a token of our own, for the head and our drivers alike; otherwise
        # ``ray start`` turns authentication on whenever some other Ray user left ~/.ray/auth_token behind.
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        TAG_VARIABLE: tag,
    })
    port = _free_port()
    head = RayHead(f"127.0.0.1:{port}", env, tag, temp_dir)
    command = [
        "ray", "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2", "--num-gpus=0",
        "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}",
        f"--ray-client-server-port={_free_port()}", f"--dashboard-port={_free_port()}",
        f"--dashboard-agent-listen-port={_free_port()}",
    ]
    try:
        started = subprocess.run(command, env=env, capture_output=True, text=True, timeout=90)
        assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
        yield head
    finally:
        try:
            _kill_head(head)
        finally:
            shutil.rmtree(temp_dir, ignore_errors=True)


def _write_config(path: Path, *, budget: int, sleep_seconds: float, max_retries: int = 1,
                  executor: str = "ray") -> Path:
    data = yaml.safe_load(TINY_YAML.read_text())
    data["search"]["max_evaluations"] = budget
    data["fitness"]["sleep_seconds"] = sleep_seconds
    data["executor"].update(kind=executor, max_retries=max_retries)
    path.write_text(yaml.safe_dump(data))
    return path


def _reference(tmp_path: Path, budget: int) -> Path:
    """An uninterrupted in-process run of the same search (no sleep and no Ray: neither changes a fitness)."""
    config = load_search_config(_write_config(tmp_path / "reference.yaml", budget=budget, sleep_seconds=0.0,
                                              executor="local"))
    SearchRunner(config, run_dir=tmp_path / "reference" / RUN).run()
    return tmp_path / "reference" / RUN


def _search_command(config: Path, output: Path, head: RayHead) -> list[str]:
    return [sys.executable, "-m", "assemblenet.cli.main", "search", str(config), "--executor", "ray",
            "--ray-address", head.address, "--output", str(output), "--no-progress", "--no-report"]


def _start(command: list[str], head: RayHead, log: Path) -> tuple[subprocess.Popen, object]:
    handle = open(log, "w")
    return subprocess.Popen(command, env=head.env, stdout=subprocess.DEVNULL, stderr=handle), handle


def _wait_for(condition, process: subprocess.Popen, log: Path, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert process.poll() is None, f"the search ended before {what}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{log.read_text()[-3000:]}"
        time.sleep(0.02)


def _kill_a_running_trial(head: RayHead, process: subprocess.Popen, log: Path) -> int:
    def running_trial() -> int | None:
        workers = [pid for pid, title in _head_processes(head).items() if title == TRIAL_TITLE]
        return workers[0] if workers else None

    pid = _wait_for(running_trial, process, log, "a Ray worker running a trial")
    os.kill(pid, signal.SIGKILL)
    return pid


def _finish(process: subprocess.Popen, handle, log: Path, timeout: float = 120.0) -> str:
    try:
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        handle.close()
    text = log.read_text()
    assert process.returncode == 0, text[-3000:]
    return text


def test_worker_killed_mid_trial_is_retried_with_the_same_fitness(tmp_path: Path, ray_head: RayHead) -> None:
    budget = 10  # 8 random initial graphs, then children whose parents are picked by fitness
    config = _write_config(tmp_path / "search.yaml", budget=budget, sleep_seconds=0.7, max_retries=1)
    output, log = tmp_path / "out", tmp_path / "search.log"
    process, handle = _start(_search_command(config, output, ray_head), ray_head, log)
    try:
        killed = _kill_a_running_trial(ray_head, process, log)
    finally:
        text = _finish(process, handle, log)
    assert "retrying (1 of 1)" in text, text[-3000:]

    records = RunStore(output / RUN).read_records()
    assert sorted(records) == list(range(budget))
    assert all(r.ok for r in records.values()), [r.error for r in records.values() if not r.ok]
    retried = [r for r in records.values() if r.attempts > 1]
    assert [r.attempts for r in retried] == [2], f"worker {killed} was killed once"

    reference = _reference(tmp_path, budget)
    assert_same_sequence(run_sequence(output / RUN), run_sequence(reference), tol=1e-12)
    index = retried[0].index
    assert retried[0].fitness == RunStore(reference).read_record(index).fitness  # bit for bit


def test_worker_killed_with_no_retries_left_is_a_recorded_failure(tmp_path: Path, ray_head: RayHead) -> None:
    budget = 4  # random initial graphs only: the same graphs whatever fails
    config = _write_config(tmp_path / "search.yaml", budget=budget, sleep_seconds=0.7, max_retries=0)
    output, log = tmp_path / "out", tmp_path / "search.log"
    process, handle = _start(_search_command(config, output, ray_head), ray_head, log)
    try:
        _kill_a_running_trial(ray_head, process, log)
    finally:
        _finish(process, handle, log)

    records = RunStore(output / RUN).read_records()
    assert sorted(records) == list(range(budget))
    failed = [r for r in records.values() if not r.ok]
    assert len(failed) == 1
    assert f"the Ray worker running evaluation {failed[0].index} was lost" in failed[0].error
    assert "executor.max_retries=0" in failed[0].error and "WorkerCrashedError" in failed[0].error
    reference = RunStore(_reference(tmp_path, budget)).read_records()
    for index, record in records.items():
        assert record.graph_hash == reference[index].graph_hash
        if record.ok:
            assert record.fitness == reference[index].fitness


def test_driver_killed_then_rerun_resumes_without_losing_finished_work(tmp_path: Path, ray_head: RayHead) -> None:
    budget = 12
    config = _write_config(tmp_path / "search.yaml", budget=budget, sleep_seconds=0.5)
    output, log = tmp_path / "out", tmp_path / "search.log"
    command = _search_command(config, output, ray_head)
    records_dir = output / RUN / "evaluations"

    process, handle = _start(command, ray_head, log)
    try:
        # SIGKILL the driver once the second batch (records 2 and 3) has started finishing.
        _wait_for(lambda: len(list(records_dir.glob("[0-9]*.json"))) >= 3, process, log, "three finished evaluations")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        handle.close()
    assert process.returncode == -signal.SIGKILL

    before = {i: r.finished_at for i, r in RunStore(output / RUN).read_records().items()}
    assert 3 <= len(before) < budget
    # Ray drops the dead driver's tasks: no worker keeps running its trials.
    deadline = time.monotonic() + 30
    while TRIAL_TITLE in _head_processes(ray_head).values():
        assert time.monotonic() < deadline, "Ray kept running the trials of a dead driver"
        time.sleep(0.05)

    resumed, handle = _start(command, ray_head, tmp_path / "resumed.log")
    text = _finish(resumed, handle, tmp_path / "resumed.log")
    assert "resuming" in text

    after = RunStore(output / RUN).read_records()
    assert sorted(after) == list(range(budget))
    assert {i: after[i].finished_at for i in before} == before  # nothing finished was lost or run again
    assert all(r.ok and r.attempts == 1 for r in after.values())
    assert_same_sequence(run_sequence(output / RUN), run_sequence(_reference(tmp_path, budget)), tol=1e-12)


def test_missing_ray_address_is_one_clear_error(tmp_path: Path) -> None:
    port = _free_port()  # nothing listens there
    config = _write_config(tmp_path / "search.yaml", budget=2, sleep_seconds=0.0)
    command = [sys.executable, "-m", "assemblenet.cli.main", "search", str(config), "--ray-address",
               f"127.0.0.1:{port}", "--output", str(tmp_path / "out"), "--no-progress", "--no-report"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH", "")) if p)}
    start = time.monotonic()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"assemblenet: error: --ray-address / executor.ray_address: no Ray cluster answers at "
                      f"'127.0.0.1:{port}' (Connection refused); start one there with 'ray start --head "
                      f"--port=PORT' or fix the address"]
    assert time.monotonic() - start < 30
