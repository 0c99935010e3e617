"""Hostile clients without a key against a real ``attribution serve-ihc`` on 127.0.0.1.

Four attacks, one after the other, each bounded (it stops by itself): long header lines on four
connections, one huge header, partial headers held open, many half-open connections (connected, nothing
sent). While each runs, a keyed ``GET /_stats`` on a new connection is timed every 0.2 s and the server's
resident memory is sampled. The server holds if its memory stays within 50 MB of idle and every keyed
request answers within 1 s; the script says so per attack and exits 1 if not.
Usage:
    python benchmarks/ihc_server_attacks.py
    python benchmarks/ihc_server_attacks.py --scale 4          # four times the bytes and connections
    python benchmarks/ihc_server_attacks.py --attack "half-open connections"
    python benchmarks/ihc_server_attacks.py --json results/ihc_server_attacks.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import secrets
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil

from attribution.ihc_api.contract import API_KEY_HEADER
from attribution.ihc_api.local import LocalServer
from attribution.ihc_api.server import STATS_PATH

MEMORY_SLACK_MB = 50
ANSWER_SECONDS = 1.0
PROBE_EVERY = 0.2
CHUNK = 1 << 20
HEAD = b"GET / HTTP/1.1\r\nhost: attack\r\n"


@dataclass
class Outcome:
    """What one attack saw, and what the server did meanwhile."""

    attack: str
    sent_mb: float = 0.0
    connections: int = 0
    closed_by_server: int = 0
    longest_open_s: float = 0.0
    peak_extra_mb: float = 0.0
    slowest_answer_s: float = 0.0
    failed_answers: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def held(self) -> bool:
        return (
            self.peak_extra_mb <= MEMORY_SLACK_MB
            and self.slowest_answer_s <= ANSWER_SECONDS
            and not self.failed_answers
        )


class Tally:
    """Counts shared by an attack's threads."""

    def __init__(self) -> None:
        self.lock, self.sent, self.connections, self.closed, self.longest = threading.Lock(), 0, 0, 0, 0.0

    def add(self, sent: int = 0, connections: int = 0, closed: int = 0, open_s: float = 0.0) -> None:
        with self.lock:
            self.sent += sent
            self.connections += connections
            self.closed += closed
            self.longest = max(self.longest, open_s)


def stream_header(address: tuple[str, int], total: int, tally: Tally) -> None:
    """One header line of ``total`` bytes, sent in 1 MB pieces; on a new connection whenever the server
    closes one, until every byte is sent."""
    left = total
    while left > 0:
        began = time.monotonic()
        with socket.create_connection(address, timeout=10) as sock:
            tally.add(connections=1)
            sock.sendall(HEAD + b"x-long: ")
            try:
                while left > 0:
                    piece = min(CHUNK, left)
                    sock.sendall(b"a" * piece)
                    left -= piece
                    tally.add(sent=piece)
            except OSError:  # the server closed it
                tally.add(closed=1, open_s=time.monotonic() - began)


def long_lines(address: tuple[str, int], scale: float, tally: Tally) -> None:
    """Four connections, each sending a 50 MB header line."""
    _together([lambda: stream_header(address, int(50 * scale) * CHUNK, tally) for _ in range(4)])


def huge_header(address: tuple[str, int], scale: float, tally: Tally) -> None:
    """One connection sending a 96 MB header line."""
    stream_header(address, int(96 * scale) * CHUNK, tally)


def partial_heads(address: tuple[str, int], scale: float, tally: Tally) -> None:
    """200 connections that send a header line every second for 20 s and never end their head."""
    with ExitStack() as stack:
        socks = [
            stack.enter_context(socket.create_connection(address, timeout=10))
            for _ in range(int(200 * scale))
        ]
        tally.add(connections=len(socks))
        began, live = time.monotonic(), dict.fromkeys(socks, True)
        for sock in socks:
            sock.sendall(HEAD)
        for second in range(20):
            time.sleep(1)
            for sock in [sock for sock, alive in live.items() if alive]:
                try:
                    sock.sendall(f"x-part-{second}: more\r\n".encode())
                except OSError:
                    live[sock] = False
                    tally.add(closed=1, open_s=time.monotonic() - began)
        tally.add(open_s=time.monotonic() - began if any(live.values()) else 0.0)


def half_open(address: tuple[str, int], scale: float, tally: Tally) -> None:
    """4,000 connections that send nothing, held 15 s."""
    with ExitStack() as stack:
        socks = []
        for _ in range(int(4000 * scale)):
            with suppress(OSError):
                socks.append(stack.enter_context(socket.create_connection(address, timeout=10)))
        tally.add(connections=len(socks))
        began = time.monotonic()
        time.sleep(15)
        for sock in socks:
            sock.setblocking(False)
            with suppress(BlockingIOError):
                if sock.recv(1) == b"":
                    tally.add(closed=1)
        tally.add(open_s=time.monotonic() - began)


ATTACKS: dict[str, Callable[[tuple[str, int], float, Tally], None]] = {
    "long header lines x4": long_lines,
    "one huge header": huge_header,
    "partial heads held open": partial_heads,
    "half-open connections": half_open,
}


def _together(work: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=job) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def probe(client: httpx.Client, url: str, key: str) -> float:
    """Seconds a keyed request on a new connection takes to be answered (inf: no answer)."""
    began = time.monotonic()
    try:
        answer = client.get(url + STATS_PATH, headers={API_KEY_HEADER: key})
    except httpx.HTTPError:
        return float("inf")
    return time.monotonic() - began if answer.status_code == 200 else float("inf")


def new_connections() -> httpx.Client:
    """A client that opens a new connection for every request, as a new caller would."""
    return httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0))


def run_attack(name: str, server: LocalServer, key: str, scale: float, idle: int) -> Outcome:
    """Run one attack in a process of its own (it does not compete with the probes for this one's GIL);
    probe, and sample memory against ``idle`` bytes, until it ends."""
    split = urlsplit(server.url)
    memory = psutil.Process(server.process.pid)
    outcome = Outcome(name)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool, new_connections() as client:
        pool.submit(int).result()  # the child is up before the attack starts
        attack = pool.submit(attack_counts, name, (split.hostname, split.port), scale)
        while not attack.done():
            seconds = probe(client, server.url, key)
            outcome.failed_answers += seconds == float("inf")
            outcome.slowest_answer_s = max(outcome.slowest_answer_s, min(seconds, 99.0))
            outcome.peak_extra_mb = max(outcome.peak_extra_mb, (memory.memory_info().rss - idle) / 2**20)
            time.sleep(PROBE_EVERY)
        sent, outcome.connections, outcome.closed_by_server, outcome.longest_open_s = attack.result()
    outcome.sent_mb = sent / 2**20
    return outcome


def attack_counts(name: str, address: tuple[str, int], scale: float) -> tuple[int, int, int, float]:
    """Run an attack; what it counted: bytes sent, connections, closed by the server, longest open."""
    tally = Tally()
    ATTACKS[name](address, scale, tally)
    return tally.sent, tally.connections, tally.closed, tally.longest


def bench(scale: float, attacks: list[str]) -> list[Outcome]:
    key = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="ihc-attacks-") as folder:  # private (0700), removed after
        log = Path(folder) / "server.log"
        with LocalServer.launch(log, api_key=key) as server:
            with new_connections() as client:  # warm up: the first answer loads what every later one uses
                probe(client, server.url, key)
            idle = psutil.Process(server.process.pid).memory_info().rss
            outcomes = [run_attack(name, server, key, scale, idle) for name in attacks]
            alive = server.process.poll() is None
    if not alive:
        outcomes[-1].notes.append("the server died")
    return outcomes


def show(outcomes: list[Outcome]) -> None:
    print(
        f"{'attack':<26}{'sent MB':>9}{'conns':>7}{'closed':>8}{'open s':>8}"
        f"{'+MB':>7}{'slowest s':>11}{'failed':>8}  held"
    )
    for o in outcomes:
        print(
            f"{o.attack:<26}{o.sent_mb:>9.0f}{o.connections:>7}{o.closed_by_server:>8}{o.longest_open_s:>8.1f}"
            f"{o.peak_extra_mb:>7.1f}{o.slowest_answer_s:>11.3f}{o.failed_answers:>8}  "
            f"{'yes' if o.held else 'NO'} {'; '.join(o.notes)}"
        )
    print(
        f"held: memory within {MEMORY_SLACK_MB} MB of idle and every keyed request answered within {ANSWER_SECONDS:g} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the bytes and connections")
    parser.add_argument("--attack", action="append", choices=ATTACKS, help="only these (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the outcomes here")
    args = parser.parse_args()
    outcomes = bench(args.scale, args.attack or list(ATTACKS))
    show(outcomes)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=2))
    sys.exit(0 if all(o.held for o in outcomes) else 1)


if __name__ == "__main__":
    main()
