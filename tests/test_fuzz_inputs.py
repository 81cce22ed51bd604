"""Fuzz (issue 20): mutated audio headers, avatar.json / landmarks.json files and control
API bodies each end in success or one ``Error:`` line, never a signal or a traceback.

Seeded: ``AVATAR_VCAM_FUZZ_SEED`` picks another seed, ``AVATAR_VCAM_FUZZ_N`` scales the
case counts; a failure names the seed, the case and its mutation, and the case files stay
in pytest's temporary folder. Files go through a worker subprocess that is started again
after a case kills it, so a segfault fails the one case that caused it.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import selectors
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fuzz_inputs import Case, audio_cases, audio_seeds, control_bodies, json_cases

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).parent / "support" / "fuzz_worker.py"
SEED = int(os.environ.get("AVATAR_VCAM_FUZZ_SEED", "20"))
SCALE = float(os.environ.get("AVATAR_VCAM_FUZZ_N", "1"))
N_AUDIO, N_AVATAR, N_LANDMARKS, N_BODIES = (round(SCALE * n) for n in (300, 200, 60, 300))
CASE_TIMEOUT_S = 30.0  # one case; a hang counts as a failure


def _run_worker(cases: list[Case], workdir: Path) -> dict[int, dict]:
    """Results by case index; a worker that dies or hangs is restarted after that case."""
    manifest = workdir / "manifest.jsonl"
    manifest.write_text("\n".join(c.line() for c in cases) + "\n")
    results: dict[int, dict] = {}
    start = 0
    while start < len(cases):
        proc = subprocess.Popen([sys.executable, str(WORKER), str(manifest), str(start),
                                 str(workdir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=workdir, text=True)
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        hung = False
        while start < len(cases):
            if not sel.select(timeout=CASE_TIMEOUT_S):
                hung = True
                break
            line = proc.stdout.readline()
            if not line:
                break
            result = json.loads(line)
            results[result["index"]] = result
            start += 1
        if start >= len(cases):
            proc.wait(30)
            break
        proc.kill()
        proc.wait(30)
        err = proc.stderr.read()[-1500:]
        why = f"hung over {CASE_TIMEOUT_S:g} s" if hung else \
            f"worker died with rc {proc.returncode}"
        results[cases[start].index] = {"index": cases[start].index, "outcome": "signal",
                                       "detail": f"{why}: {err}"}
        start += 1
    return results


def _failures(cases: list[Case], results: dict[int, dict]) -> list[str]:
    out = []
    for c in cases:
        r = results.get(c.index, {"outcome": "missing", "detail": ""})
        if r["outcome"] not in ("ok", "error"):
            out.append(f"seed {SEED} case {c.index} [{c.kind}] {c.path.name} ({c.how}): "
                       f"{r['outcome']}: {r['detail']}")
    return out


def test_fuzzed_files_end_in_success_or_an_error_line(tmp_path):
    t0 = time.monotonic()
    rng = random.Random(SEED)
    seeds = audio_seeds(tmp_path / "seeds")
    leo = ROOT / "avatars" / "leo"
    cases = audio_cases(rng, seeds, tmp_path / "audio", N_AUDIO)
    cases += json_cases(rng, leo / "avatar.json", "avatar", tmp_path / "json", N_AVATAR,
                        start=len(cases))
    cases += json_cases(rng, leo / "landmarks.json", "landmarks", tmp_path / "json",
                        N_LANDMARKS, start=len(cases))
    results = _run_worker(cases, tmp_path)
    failures = _failures(cases, results)
    assert not failures, f"{len(failures)} of {len(cases)} cases failed:\n" + "\n".join(
        failures[:20])
    outcomes = [results[c.index]["outcome"] for c in cases]
    # the mutations must reach the parsers: both outcomes occur for each kind
    for kind in ("audio", "avatar", "landmarks"):
        seen = {results[c.index]["outcome"] for c in cases if c.kind == kind}
        assert seen == {"ok", "error"}, (kind, seen)
    print(f"{len(cases)} file cases in {time.monotonic() - t0:.1f} s: "
          f"{outcomes.count('ok')} ok, {outcomes.count('error')} Error lines")


@pytest.fixture(scope="module")
def control_server(tmp_path_factory):
    """A real control API server in this process, driving a real engine (warp, dsp)."""
    from engine import Engine, EngineConfig
    from vcam.control.api import ControlServer, EngineTarget

    engine = Engine("leo", EngineConfig(renderer="warp", size=128, a2m="dsp", seed=1))
    server = ControlServer(EngineTarget(engine),
                           runtime_dir=tmp_path_factory.mktemp("run")).start()
    yield server, engine
    server.close()
    engine.close()


def _post(port: int, token: str, path: str, body: bytes) -> tuple[int, object]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers={"Authorization": f"Bearer {token}",
                                                        "Content-Type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(raw)
    except ValueError:
        return resp.status, raw


def test_fuzzed_control_bodies(control_server, capfd, caplog):
    server, engine = control_server
    rng = random.Random(SEED + 1)
    bodies = control_bodies(rng, N_BODIES, engine.expressions)
    seen: dict[int, int] = {}
    bad = []
    for i, (path, body) in enumerate(bodies):
        status, reply = _post(server.port, server.token, path, body)
        seen[status] = seen.get(status, 0) + 1
        ok = status in (200, 400, 404, 409, 411, 501) and isinstance(reply, dict) and (
            ("error" in reply and isinstance(reply["error"], str) and "\n" not in reply["error"])
            if status != 200 else reply.get("ok") is True)
        if not ok:
            bad.append(f"seed {SEED + 1} body {i} POST {path} {body[:80]!r}: {status} {reply!r}")
    err = capfd.readouterr().err
    assert not bad, "\n".join(bad[:20])
    assert "Traceback" not in err, err[-3000:]
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert seen.get(200) and seen.get(400) and seen.get(404), seen
    # and it still serves
    status, reply = _post(server.port, server.token, "/v1/expression", b'{"name": "smile"}')
    assert status == 200 and engine.expression == "smile"
