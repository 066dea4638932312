"""Two sites, for real (SPEC §8): standby follows, failover, outage writes, failback, kill -9, resume.

Three network namespaces made by ``policies/two-site/netns.sh`` — primary,
standby, store (moto S3 server and bind9 with a TSIG-signed zone) — run the
shipped ``policies/two-site.yaml`` and its runbooks as a user would: the
primary serves its directory over HTTP and runs the continuous mirror
(``drorch schedule``); the standby runs ``drorch standby``; the runbooks run
on the standby (the DR side). Clients are the store namespace: they resolve
www.two-site.test. with a real DNS query and fetch over the namespace network.

DNS moves with a ``script`` step that sends an RFC 2136 update signed with
the zone's TSIG key (``policies/two-site/dns-set.py``, dnspython).

Printed figures: data lag (write at the primary until visible at the standby),
RPO (what the cut lost), RTO (cut until clients are served by the standby).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip") or not os.path.exists("/usr/sbin/named"),
                       reason="needs root (network namespaces), iproute2 and bind9"),
]


# ------------------------------------------------------------------------- the three hosts

REPO = Path(__file__).resolve().parents[2]
PREFIX = "recovery-b-ts"
PRIMARY_IP, STANDBY_IP, SERVICE_IP, PORT = "10.200.1.2", "10.200.2.2", "10.200.0.1", 8080
BIN = Path(sys.executable).parent


@dataclass
class Started:
    """A background process and what it printed so far (read by threads, never blocking)."""

    proc: subprocess.Popen[str]
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for stream, sink in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr)):
            threading.Thread(target=_pump, args=(stream, sink), daemon=True).start()

    def wait_for(self, text: str, timeout: float) -> str:
        """The first line (stdout or stderr) containing ``text``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in [*self.stdout, *self.stderr]:
                if text in line:
                    return line
            if self.proc.poll() is not None and not any(text in ln for ln in [*self.stdout, *self.stderr]):
                break
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} in the output:\n{self.output()}")

    def output(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def _pump(stream: object, sink: list[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        sink.append(line)


class Sites:
    """The shipped ``policies/`` copied to ``workdir`` and run there as shipped (paths relative)."""

    def __init__(self, workdir: Path, key: str) -> None:
        shutil.copytree(REPO / "policies", workdir / "policies",
                        ignore=shutil.ignore_patterns("sites", ".drorch*"))
        self.policies = workdir / "policies"
        self.policy = self.policies / "two-site.yaml"
        self.netns = self.policies / "two-site" / "netns.sh"
        self.dns_set = self.policies / "two-site" / "dns-set.py"
        self.root = self.policies / "two-site" / "sites"  # netns.sh's default: where the policy expects it
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("DRORCH_", "AWS_", "RESTIC_", "TWO_SITE_DIR"))}
        self.env.update({"TWO_SITE_PREFIX": PREFIX, "PYTHON": sys.executable,
                         "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}", "DRORCH_KEY": key,
                         "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                         "AWS_DEFAULT_REGION": "us-east-1", "NO_COLOR": "1", "COLUMNS": "200"})
        self.started: list[Started] = []

    # -------------------------------------------------------------------------- lifecycle

    def up(self) -> None:
        self.script("down", check=False)  # leftovers of a run that was killed
        self.script("up")
        self.script("store")

    def down(self) -> None:
        for item in reversed(self.started):
            _stop(item.proc)
        self.script("down", check=False)

    def script(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(self.netns), *args], env=self.env, capture_output=True, text=True,
                              timeout=60)
        if check and done.returncode != 0:
            raise AssertionError(f"netns.sh {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done

    # ------------------------------------------------------------------------- processes

    def path(self, site: str) -> Path:
        return self.root / site / "www"

    def _argv(self, site: str, argv: list[str]) -> tuple[list[str], dict[str, str]]:
        env = dict(self.env, DRORCH_HOME=str(self.root / f"home-{site}"))
        return ["ip", "netns", "exec", f"{PREFIX}-{site}", *argv], env

    def drorch(self, site: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv, env = self._argv(site, [str(BIN / "drorch"), *args])
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                              cwd=self.policies.parent, stdin=subprocess.DEVNULL)

    def start(self, site: str, *argv: str) -> Started:
        full, env = self._argv(site, list(argv))
        proc = subprocess.Popen(full, env=env, cwd=self.policies.parent, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        item = Started(proc)
        self.started.append(item)
        return item

    def start_drorch(self, site: str, *args: str) -> Started:
        return self.start(site, str(BIN / "drorch"), *args)

    def run_in(self, site: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        full, env = self._argv(site, list(argv))
        return subprocess.run(full, env=env, capture_output=True, text=True, timeout=timeout,
                              cwd=self.policies.parent)

    # ------------------------------------------------------------------------ the client

    def resolve(self) -> str:
        """What DNS answers for www.two-site.test., asked from the store (the clients' network)."""
        done = self.run_in("store", sys.executable, str(self.dns_set), "--server", SERVICE_IP, "--zone",
                           "two-site.test.", "--record", "www", "--check", "none")
        return done.stdout.split()[-1]

    def fetch(self, name: str) -> bytes:
        """GET http://<what DNS answers>:8080/NAME from the store namespace."""
        url = f"http://{self.resolve()}:{PORT}/{name}"
        code = ("import sys, urllib.request; "
                f"sys.stdout.buffer.write(urllib.request.urlopen({url!r}, timeout=5).read())")
        done = subprocess.run(["ip", "netns", "exec", f"{PREFIX}-store", sys.executable, "-c", code],
                              capture_output=True, timeout=30)
        if done.returncode != 0:
            raise AssertionError(f"GET {url} failed: {done.stderr.decode()[-500:]}")
        return done.stdout


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def wait_until(predicate: object, timeout: float, what: str, poll: float = 0.05) -> float:
    """Seconds until ``predicate()`` held; AssertionError naming ``what`` after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():  # type: ignore[operator]
            return time.monotonic() - start
        time.sleep(poll)
    raise AssertionError(f"{what}: not within {timeout:g}s")



@pytest.fixture
def sites(tmp_path, drorch_key):
    pytest.importorskip("dns")
    pytest.importorskip("moto")
    site = Sites(tmp_path, drorch_key)
    try:
        site.up()
        yield site
    finally:
        site.down()


def _seed(root: Path) -> None:
    (root / "index.html").write_text("<h1>two-site</h1>\n")
    (root / "docs").mkdir()
    for i in range(20):
        (root / "docs" / f"page-{i:02}.html").write_text(f"page {i}\n" * 500)
    (root / "big.bin").write_bytes(os.urandom(4 * 1024 * 1024))


def _ok(done, what: str) -> str:
    assert done.returncode == 0, f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return str(done.stdout)


def _journal(sites: Sites, run_id: str) -> dict:
    return json.loads(_ok(sites.drorch("standby", "runbook", "show", run_id, "--json"), "runbook show"))


def _step(doc: dict, name: str) -> dict:
    return next(s for s in doc["steps"] if s["name"] == name)


def _killed_at_gate(sites: Sites, command: str) -> tuple[str, float]:
    """Start ``drorch COMMAND`` on the standby, kill -9 it while it waits at its approve gate."""
    started = time.monotonic()
    run = sites.start_drorch("standby", command, str(sites.policy))
    run_id = run.wait_for("run-started", 60).split()[-1]
    run.wait_for("approval-waiting", 120)
    run.kill9()  # the operator's session dies at the gate
    return run_id, started


def _resume(sites: Sites, run_id: str) -> dict:
    _ok(sites.drorch("standby", "runbook", "resume", run_id, "--yes", timeout=180), "runbook resume")
    doc = _journal(sites, run_id)
    assert doc["status"] == "succeeded", doc
    return doc


def _not_repeated(before: dict, after: dict) -> list[str]:
    """Steps finished before the kill are untouched by the resume (same start, end, attempts)."""
    finished = [s for s in before["steps"] if s["phase"] == "do" and s["state"] == "done"]
    for step in finished:
        again = _step(after, step["name"])
        assert (again["started"], again["finished"], again["attempts"]) == \
            (step["started"], step["finished"], step["attempts"]), f"resume repeated {step['name']}"
    return [s["name"] for s in finished]


def _data_lag(sites: Sites, name: str, timeout: float = 30) -> float:
    (sites.path("primary") / name).write_text(f"{name} at {time.time()}\n")
    return wait_until(lambda: (sites.path("standby") / name).exists(), timeout, f"{name} at the standby")


class _Writer(threading.Thread):
    """Writes w-NNN.txt at the primary every 0.2 s until stopped; remembers when each was written."""

    def __init__(self, root: Path) -> None:
        super().__init__(daemon=True)
        self.root, self.stop, self.written = root, threading.Event(), {}
        self.started = time.time()

    def run(self) -> None:
        self.started = time.time()
        n = 0
        while not self.stop.is_set():
            name = f"w-{n:03}.txt"
            (self.root / name).write_text(f"write {n}\n")
            self.written[name] = time.time()
            n += 1
            self.stop.wait(0.2)


def test_two_sites_failover_and_failback(sites: Sites) -> None:
    primary, standby = sites.path("primary"), sites.path("standby")
    _seed(primary)
    _ok(sites.run_in("primary", str(sites.policies / "two-site" / "service.sh"), "start", "primary",
                     PRIMARY_IP, str(PORT), str(primary)), "primary service")
    _ok(sites.drorch("primary", "apply", str(sites.policy), "--quiet"), "first apply")
    sites.start_drorch("primary", "schedule", str(sites.policy))
    follower = sites.start_drorch("standby", "standby", str(sites.policy), "--mirror", "web")
    wait_until(lambda: (standby / "big.bin").exists(), 60, "the first snapshot at the standby")
    assert sites.fetch("index.html") == b"<h1>two-site</h1>\n"  # served by the primary
    big_inode = (primary / "big.bin").stat().st_ino

    # write at the primary, see it at the standby
    lags = [_data_lag(sites, f"lag-{i}.txt") for i in range(5)]
    print(f"\ndata lag over {len(lags)} writes: max {max(lags):.2f}s, mean {sum(lags) / len(lags):.2f}s")

    # the outage: writes in flight when the primary's link goes
    writer = _Writer(primary)
    writer.start()
    time.sleep(8)  # a steady trickle: the continuous mirror snapshots at least every 5 s
    sites.script("cut")
    cut = time.time()
    writer.stop.set()
    writer.join()

    # failover from the DR side, killed once at its approve gate, resumed
    run_id, failover_started = _killed_at_gate(sites, "failover")
    killed = _journal(sites, run_id)
    assert [s["state"] for s in killed["steps"][:3]] == ["done", "done", "done"], killed
    doc = _resume(sites, run_id)
    assert _not_repeated(killed, doc) == ["promote", "serve", "healthy"]
    assert sites.resolve() == STANDBY_IP
    rto = time.time() - cut
    assert sites.fetch("index.html") == b"<h1>two-site</h1>\n"  # served by the standby now
    survived = sorted(n for n in writer.written if (standby / n).exists())
    lost = sorted(set(writer.written) - set(survived))
    assert survived == sorted(writer.written)[:len(survived)], "the standby holds a gap, not a prefix"
    newest_safe = max(writer.written[n] for n in survived) if survived else writer.started
    print(f"failover: RTO {rto:.1f}s from the cut until clients are served by the standby "
          f"(runbook {doc['rto_s']:.1f}s incl. the kill and resume); data lost (RPO) "
          f"{cut - newest_safe:.2f}s: {len(lost)} of {len(writer.written)} writes")
    assert doc["steps"][0]["outputs"]["snapshot"]

    # the standby serves writes during the outage
    (standby / "dr-written.txt").write_text("written at the DR site\n")
    assert sites.fetch("dr-written.txt") == b"written at the DR site\n"
    time.sleep(1.5)  # a follower that ignored the promotion would remove it now
    assert (standby / "dr-written.txt").exists()
    assert "promoted and serves" in follower.output()

    # the link comes back; failback from the DR side, killed once at its gate, resumed
    sites.script("heal")
    run_id, _ = _killed_at_gate(sites, "failback")
    killed = _journal(sites, run_id)
    assert _step(killed, "reverse")["state"] == "done"
    doc = _resume(sites, run_id)
    assert _not_repeated(killed, doc) == ["reverse", "primary-healthy"]
    assert (primary / "dr-written.txt").read_text() == "written at the DR site\n"
    for name in lost:
        assert not (primary / name).exists()  # the primary holds what was served, nothing else
    assert (primary / "big.bin").stat().st_ino == big_inode  # unchanged: not rewritten
    assert sites.resolve() == PRIMARY_IP
    assert sites.fetch("dr-written.txt") == b"written at the DR site\n"  # from the primary
    served = [s for s in _snapshots(sites) if s["paths"] == [str(standby)]]
    assert len(served) == 1, "reverse snapshotted the standby more than once"

    # the standby follows again
    lag = _data_lag(sites, "after-failback.txt", timeout=60)
    print(f"after failback the standby follows again: data lag {lag:.2f}s")
    status = json.loads(_ok(sites.drorch("standby", "status", str(sites.policy), "--json"), "status"))
    copy = status["mirrors"][0]["standby"]
    assert copy["promoted"] is False and copy["snapshot"], copy
    print(f"status at the standby: standby lag {copy['lag_s']}s, data lag {copy['data_lag_s']:.2f}s")
    _ok(sites.run_in("standby", str(sites.dns_set), "--server", "10.200.0.1", "--zone", "two-site.test.",
                     "--record", "www", "--check", PRIMARY_IP), "dns check")


def _snapshots(sites: Sites) -> list[dict]:
    done = sites.drorch("standby", "snapshots", str(sites.policy), "--mirror", "web", "--json")
    return list(json.loads(_ok(done, "snapshots"))["store"])
