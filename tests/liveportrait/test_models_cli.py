"""`avatar-vcam models fetch/list` and the weights folder, with synthesised checkpoints.

The hub cannot be reached here: ``fetch`` is driven with a local fake hub (a folder in the
repo layout, served through the same ``download``/``metadata`` hooks huggingface_hub fills
in production). ``--from`` is tested end to end through the real CLI.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.renderers.liveportrait import WeightsError
from engine.renderers.liveportrait import weights as W
from vcam.cli.main import cli


@pytest.fixture()
def models_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(W.ENV_DIR, str(tmp_path / "models"))
    return tmp_path / "models" / "KwaiVGI-LivePortrait"


def fake_hub(weights_dir: Path):
    """download/metadata hooks serving ``weights_dir`` (official layout) as the hub repo."""
    def download(repo_id: str, filename: str, revision: str, local_dir: Path) -> Path:
        assert repo_id == W.REPO_ID and filename.startswith("liveportrait/")
        src = weights_dir / filename.removeprefix("liveportrait/")
        dst = local_dir / filename
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        return dst

    def metadata(repo_id: str, revision: str) -> dict:
        out = {}
        for path in W.REPO_PATHS.values():
            f = weights_dir / path.removeprefix("liveportrait/")
            out[path] = (f.stat().st_size, hashlib.sha256(f.read_bytes()).hexdigest())
        return out

    return download, metadata


def test_fetch_from_fake_hub_records_and_lists(weights_dir: Path, models_env: Path) -> None:
    download, metadata = fake_hub(weights_dir)
    records = W.fetch(download=download, metadata=metadata)
    assert {r.network for r in records} == set(W.REPO_PATHS)
    rec = json.loads((models_env / W.RECORD).read_text())["files"]
    spade = models_env / W.REPO_PATHS["spade"]
    assert rec["spade"]["sha256"] == hashlib.sha256(spade.read_bytes()).hexdigest()
    assert all(s.state == "ok" for s in W.status(verify=True))
    # a damaged file is caught by size, or by sha256 with --verify
    data = bytearray(spade.read_bytes())
    data[-10] ^= 0xFF
    spade.write_bytes(bytes(data))
    states = {s.network: s.state for s in W.status()}
    assert states["spade"] == "ok"  # same size: only the hash can tell
    assert {s.network: s.state for s in W.status(verify=True)}["spade"] == "changed"
    result = CliRunner().invoke(cli, ["models", "list", "--verify", "--json"])
    assert result.exit_code == 0, result.output
    files = {f["network"]: f["state"] for f in json.loads(result.output)["liveportrait"]["files"]}
    assert files["spade"] == "changed" and files["motion"] == "ok"


def test_fetch_rejects_a_file_that_differs_from_the_hub(weights_dir: Path, models_env) -> None:
    download, metadata = fake_hub(weights_dir)

    def lying_metadata(repo_id: str, revision: str) -> dict:
        meta = metadata(repo_id, revision)
        size, _ = meta[W.REPO_PATHS["warping"]]
        meta[W.REPO_PATHS["warping"]] = (size, "0" * 64)
        return meta

    with pytest.raises(WeightsError, match="arrived damaged"):
        W.fetch(download=download, metadata=lying_metadata)
    assert not (models_env / W.REPO_PATHS["warping"]).exists()  # the bad file is removed


def test_fetch_offline_says_what_to_do(models_env: Path) -> None:
    def offline(repo_id: str, revision: str) -> dict:
        raise ConnectionError("Name or service not known")

    with pytest.raises(WeightsError) as e:
        W.fetch(metadata=offline)
    msg = str(e.value)
    assert "--from DIR" in msg and "ConnectionError" in msg and "\n" not in msg


def test_cli_fetch_from_folder_then_list(weights_dir: Path, models_env: Path,
                                         tmp_path: Path) -> None:
    flat = tmp_path / "by_hand"
    flat.mkdir()
    for p in weights_dir.rglob("*.pth"):
        shutil.copy(p, flat / p.name)  # users often download the files into one folder
    runner = CliRunner()
    result = runner.invoke(cli, ["models", "list", "--json"])
    assert result.exit_code == 0
    assert {f["state"] for f in json.loads(result.output)["liveportrait"]["files"]} == {"missing"}
    result = runner.invoke(cli, ["models", "fetch", "liveportrait", "--from", str(flat)])
    assert result.exit_code == 0, result.output
    assert W.installed()
    result = runner.invoke(cli, ["models", "list", "--json"])
    assert {f["state"] for f in json.loads(result.output)["liveportrait"]["files"]} == {"ok"}


def test_cli_fetch_from_bad_folder_is_one_line(tmp_path: Path, models_env: Path,
                                               weights_dir: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["models", "fetch", "liveportrait", "--from",
                                 str(tmp_path / "nope")])
    assert result.exit_code == 1 and "does not exist" in result.output
    bad = tmp_path / "bad"
    shutil.copytree(weights_dir, bad)
    (bad / "base_models" / "warping_module.pth").write_bytes(b"garbage")
    result = runner.invoke(cli, ["models", "fetch", "liveportrait", "--from", str(bad)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "warping_module.pth" in result.output and "re-download" in result.output
    assert not any(s.state != "missing" for s in W.status())  # nothing was copied


def test_cli_liveportrait_replay(weights_dir: Path, models_env: Path, tmp_path: Path) -> None:
    """A keypoint motion file -> mp4, through the real CLI (CPU, small crops)."""
    import av
    import numpy as np
    import torch

    from engine.renderers.liveportrait import load_networks

    shutil.copytree(weights_dir, models_env)
    nets = load_networks(models_env)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 128, 128, generator=g)
    from engine.renderers.liveportrait import keypoints_from_motion

    with torch.no_grad():
        kp = keypoints_from_motion(nets.motion(x))
    motion = tmp_path / "kp.npz"
    np.savez(motion, kp_driving=np.repeat(kp.numpy(), 3, 0) + 0.01 * np.arange(3)[:, None, None])
    out = tmp_path / "replay.mp4"
    result = CliRunner().invoke(cli, ["liveportrait", "replay", str(motion), "--out", str(out),
                                      "--device", "cpu", "--size", "128", "--batch", "2",
                                      "--input-size", "128"])
    assert result.exit_code == 0, result.output
    with av.open(str(out)) as f:
        frames = [fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)]
    assert len(frames) == 3 and frames[0].shape == (128, 128, 3)
    bad = CliRunner().invoke(cli, ["liveportrait", "replay", str(tmp_path / "nope.npz"),
                                   "--device", "cpu"])
    assert bad.exit_code == 1 and "does not exist" in bad.output and "Traceback" not in bad.output
