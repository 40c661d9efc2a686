"""The README's and the documentation's examples, run in order on a fresh clone with an empty home directory, succeed.

Every fenced ``bash`` and ``python`` block of README.md and of the pages in :data:`DOCUMENTS` is read from a fresh
``git clone`` of this repository's HEAD (commit README changes first) and run
in file order, one test per block, with HOME in a temporary folder (no model
store, cache or web-app runs from earlier work), the venv's ``stockdag`` on PATH
and the clone's package first on PYTHONPATH (so the clone's code runs, with the
venv's installed dependencies; installing them is ``make``'s job and needs PyPI). A command this file does not run is listed in :data:`SKIP` with the
reason; a new README command runs unless it is listed, so an example cannot go
stale unnoticed.

Adaptations, all mechanical: a synopsis line ``cmd [A | B] [C]`` runs as
``cmd``, ``cmd A``, ``cmd C`` (an alternative naming a placeholder host is
skipped); the fixed ports 8000 and 5006 become free ones (other tests may hold
them); a long-running server (``stockdag serve``, ``stockdag webapp``) is
started in the background, checked, and stopped when its block ends. The serve
lines of "Serving and measuring" are alternatives on one port: each is
started, checked with a prediction, and stopped; the bench lines then run
against the default ``stockdag serve`` (centralized, the slowest mode, which
their rates are sized for). A bench example succeeds when every request it
sent was answered (no error of any kind), not merely when it exits 0.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

#: the pages whose examples run, in this order (the README's first: a newcomer's path, then the guides)
DOCUMENTS = ("README.md", "docs/getting-started.md", "docs/guides/pipeline.md", "docs/guides/granularity.md",
             "docs/guides/placement.md", "docs/guides/serving.md", "docs/guides/webapp.md", "docs/guides/clusters.md",
             "docs/guides/experiments.md", "docs/guides/simulator.md", "docs/development/testing.md")
#: commands (prefix match after the adaptations) the test does not run, and why
SKIP = {
    "make experiment": "creates a new .venv and installs from PyPI (network); the sweep itself runs in "
                       "tests/experiments/test_notebooks.py with small parameters",
    "make test": "runs the test suite this test belongs to",
    "make bench": "the timed benchmark suite; its benchmarks run once each in this suite (tests/benchmarks)",
    "make docs": "make test builds the documentation first, with warnings as errors",
    "scripts/sweep.sh experiments/params/default.yaml -p cluster experiments/clusters/ec2-small.yaml":
        "starts EC2 instances (an AWS account and the network); the EC2 path is tested against moto in tests/deploy",
}
#: alternatives of a synopsis line that name a placeholder, not something this machine runs
PLACEHOLDERS = ("tcp://host:",)
#: how long one command may run before the test calls it hung (not a speed claim: a hang guard)
HANG_GUARD = 1800


@dataclass
class Block:
    lang: str
    lines: list[str]
    heading: str
    document: str = "README.md"


def readme_blocks(text: str) -> list[Block]:
    """The fenced bash and python blocks of a README, in order, with the heading above each."""
    blocks, heading, lang, lines = [], "", None, []
    for line in text.splitlines():
        if lang is None:
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
            m = re.match(r"^```(\w*)\s*$", line)
            if m:
                lang, lines = m.group(1), []
        elif line.startswith("```"):
            if lang in ("bash", "python"):
                blocks.append(Block(lang, lines, heading))
            lang = None
        else:
            lines.append(line)
    return blocks


def expand_synopsis(command: str) -> list[str]:
    """``cmd [A | B] [C]`` -> ``cmd``, ``cmd A``, ``cmd B``, ``cmd C`` (placeholder alternatives dropped)."""
    groups = re.findall(r"\[([^\]]*)\]", command)
    if not groups:
        return [command]
    base = re.sub(r"\s*\[[^\]]*\]", "", command).strip()
    out = [base]
    for g in groups:
        for alt in (a.strip() for a in g.split("|")):
            if alt and not any(p in alt for p in PLACEHOLDERS):
                out.append(f"{base} {alt}")
    return out


def strip_comment(line: str) -> str:
    # a comment starts at " #" outside quotes; README commands use no '#' inside arguments
    return re.split(r"\s+#", line, maxsplit=1)[0].strip() if not line.lstrip().startswith("#") else ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, proc: subprocess.Popen, what: str) -> httpx.Response:
    # waits for the server to answer (or to die): an event, not a time band
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode} before answering {url}")
        try:
            r = httpx.get(url, timeout=10)
            if r.status_code == 200:
                return r
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{what} never answered {url}")


@dataclass
class Session:
    """One fresh clone and home directory shared by every block, in README order."""

    clone: Path
    env: dict
    ports: dict  # README port -> free port
    servers: list = field(default_factory=list)

    def adapt(self, command: str) -> str:
        for fixed, free in self.ports.items():
            command = command.replace(f"127.0.0.1:{fixed}", f"127.0.0.1:{free}")
            command = re.sub(rf"--port {fixed}\b", f"--port {free}", command)
        return command

    def run(self, command: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(command, shell=True, cwd=self.clone, env=self.env, capture_output=True, text=True,
                              timeout=HANG_GUARD)
        assert proc.returncode == 0, f"`{command}` exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        assert "Traceback" not in proc.stderr, f"`{command}` printed a traceback:\n{proc.stderr[-3000:]}"
        return proc

    def start(self, command: str) -> tuple[subprocess.Popen, str]:
        argv = shlex.split(command.rstrip("&").strip())
        if argv[:2] == ["stockdag", "serve"]:
            port = self.ports[8000]
            url, probe = f"http://127.0.0.1:{port}", "/health"
        else:  # stockdag webapp
            if "--port" not in argv:  # its default, 5006, may be taken here
                argv += ["--port", str(_free_port())]
            port = int(argv[argv.index("--port") + 1])
            url, probe = f"http://127.0.0.1:{port}", "/"
        proc = subprocess.Popen(argv, cwd=self.clone, env=self.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.servers.append(proc)
        _wait_for(url + probe, proc, command)
        return proc, url

    def stop_servers(self) -> None:
        while self.servers:
            proc = self.servers.pop()
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does; the server closes its cluster
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
            err = proc.stderr.read() if proc.stderr else ""
            assert "Traceback" not in err, err[-3000:]


def documents_blocks(root: Path) -> list[Block]:
    """Every example block of :data:`DOCUMENTS` under ``root``, each tagged with its page."""
    blocks = []
    for document in DOCUMENTS:
        for block in readme_blocks((root / document).read_text()):
            block.document = document
            blocks.append(block)
    return blocks


def _current_readme_blocks() -> list[Block]:
    return documents_blocks(ROOT)


BLOCKS = _current_readme_blocks()


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    base = tmp_path_factory.mktemp("readme")
    clone = base / "clone"
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", head.stdout.strip()], check=True)
    if documents_blocks(clone) != BLOCKS:
        pytest.fail("README.md or a documentation page has uncommitted changes to its examples: commit them, then run this test")
    home = base / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    ports = {8000: _free_port(), 5006: _free_port()}
    # PYTHONPATH: the clone's package is what runs (the venv's editable install points at this worktree)
    env.update(HOME=str(home), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", PYTHONUNBUFFERED="1", PYTHONPATH=str(clone),
               DASK_STOCKDAG__SERVE__PORT=str(ports[8000]))
    s = Session(clone, env, ports)
    yield s
    s.stop_servers()


def _check_bench(session: Session, command: str, proc: subprocess.CompletedProcess) -> None:
    m = re.search(r"requests (\d+), ok (\d+), errors (\d+)", proc.stdout)
    assert m, f"`{command}` printed no summary:\n{proc.stdout}"
    print(f"`{command}`:\n{proc.stdout}")  # the measured numbers, for the log
    requests, ok, errors = map(int, m.groups())
    assert requests > 0 and ok == requests and errors == 0, f"`{command}`:\n{proc.stdout}"
    out = re.search(r"--out (\S+)", command)
    if out:
        import pandas as pd

        records = pd.read_parquet(session.clone / out.group(1)) if out.group(1).endswith(".parquet") \
            else pd.read_csv(session.clone / out.group(1))
        assert len(records) >= requests and (records["error"].fillna("") == "").all()


def _run_bash(session: Session, block: Block) -> list[str]:
    ran, bench_server = [], None
    serving = [strip_comment(line) for line in block.lines if strip_comment(line).startswith("stockdag serve --mode")]
    for raw in block.lines:
        line = strip_comment(raw)
        if not line:
            continue
        for command in expand_synopsis(session.adapt(line)):
            skip = next((reason for prefix, reason in SKIP.items() if command.startswith(prefix)), None)
            if skip:
                print(f"SKIPPED `{command}`: {skip}")
                continue
            argv = shlex.split(command.rstrip("&").strip())
            if argv[:2] in (["stockdag", "serve"], ["stockdag", "webapp"]):
                if len(serving) > 1 and command in serving:
                    # alternatives on one port: start, check one prediction, stop
                    _proc, url = session.start(command)
                    mode = argv[argv.index("--mode") + 1]
                    assert httpx.get(f"{url}/health", timeout=30).json()["mode"] == mode
                    r = httpx.get(f"{url}/predict/AAPL", params={"as_of": "2012-06-01"}, timeout=HANG_GUARD)
                    assert r.status_code == 200, r.text
                    session.stop_servers()
                else:
                    session.start(command)
                ran.append(command)
                continue
            if argv[:2] == ["stockdag", "bench"] and not session.servers:
                bench_server = bench_server or session.start("stockdag serve")
            proc = session.run(command)
            if argv[:2] == ["stockdag", "bench"]:
                _check_bench(session, command, proc)
            ran.append(command)
    session.stop_servers()
    return ran


def _run_python(session: Session, block: Block) -> list[str]:
    # saved as a script and run, as a user who pastes it into a file does: spawned Dask worker processes import
    # that file again (what `python -c` hides), so an example that starts them must show the __main__ guard
    script = session.clone.parent / f"example-{Path(block.document).stem}-{re.sub(r'[^a-z0-9]+', '-', block.heading.lower())}.py"
    script.write_text("\n".join(block.lines) + "\n")
    proc = subprocess.run([str(BIN / "python"), str(script)], cwd=session.clone,
                          env=session.env, capture_output=True, text=True, timeout=HANG_GUARD)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return block.lines


def test_readme_has_examples_and_the_skips_are_still_in_it():
    commands = [strip_comment(line) for b in BLOCKS if b.lang == "bash" for line in b.lines]
    assert len(BLOCKS) >= 5
    for prefix in SKIP:  # a stale skip would hide nothing but would read as coverage
        assert any(c.startswith(prefix) for c in commands), prefix


@pytest.mark.parametrize("index", range(len(BLOCKS)),
                         ids=[f"{i}-{b.lang}-{re.sub(r'[^a-z0-9]+', '-', (Path(b.document).stem + ' ' + b.heading).lower()).strip('-')}"
                              for i, b in enumerate(BLOCKS)])
def test_readme_block_runs(session, index):
    block = BLOCKS[index]
    ran = _run_bash(session, block) if block.lang == "bash" else _run_python(session, block)
    print(json.dumps(ran, indent=1))
