"""CLI commands for the live setup: `devices`, `doctor`, `setup-virtual-mic`."""

from __future__ import annotations

import glob
import json
import os
import sys
from dataclasses import dataclass

import click
from rich.markup import escape
from rich.table import Table

from engine.errors import EngineError

from ..live import sound_server as pulse
from ..live.audio_devices import describe_devices
from .errors import user_errors
from .tables import stdout_console


@click.command("devices")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def devices_cmd(as_json: bool) -> None:
    """List audio inputs/outputs (and sound-server sinks/sources) and virtual cameras."""
    info = describe_devices()
    info["cameras"] = find_cameras()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    out = stdout_console()
    pa = info["portaudio"]
    t = Table("kind", "index", "name", title="PortAudio devices (--source device:NAME)")
    for kind in ("inputs", "outputs"):
        for d in pa.get(kind, []):
            t.add_row(kind[:-1], str(d["index"]), escape(d["name"]))
    out.print(t)
    if pa.get("error"):
        out.print(f"[red]{escape(pa['error'])}[/]")
    if info["pulse"]:
        p = info["pulse"]
        t = Table("kind", "name", "default", title="PulseAudio/PipeWire nodes "
                  "(--source device:NAME, --voice-out NAME)")
        for s in p["sources"]:
            t.add_row("source", escape(s), "yes" if s == p["default_source"] else "")
        for s in p["sinks"]:
            t.add_row("sink", escape(s), "yes" if s == p["default_sink"] else "")
        out.print(t)
    out.print("virtual cameras: " + (escape(", ".join(info["cameras"])) or "none found"))


def find_cameras() -> list[str]:
    """v4l2loopback devices on Linux (by driver name in sysfs)."""
    found = []
    for name in sorted(glob.glob("/sys/class/video4linux/video*/name")):
        try:
            label = open(name).read().strip()
        except OSError:
            continue
        dev = "/dev/" + os.path.basename(os.path.dirname(name))
        driver = os.path.realpath(os.path.join(os.path.dirname(name), "device", "driver"))
        if "loopback" in label.lower() or "loopback" in driver.lower() or "Avatar" in label:
            found.append(f"{dev} ({label})")
    return found


@dataclass
class Check:
    what: str
    ok: bool
    detail: str
    fix: str = ""


def _v4l2loopback_checks() -> list[Check]:
    if not sys.platform.startswith("linux"):
        return [Check("virtual camera", True, "pyvirtualcam uses OBS Virtual Camera here",
                      "install OBS Studio and start its Virtual Camera once")]
    cams = find_cameras()
    modprobe = ('sudo modprobe v4l2loopback devices=1 exclusive_caps=1 '
                'card_label="Avatar Cam"')
    if not cams:
        return [Check("virtual camera", False, "no v4l2loopback device",
                      f"sudo apt install v4l2loopback-dkms && {modprobe}")]
    checks = [Check("virtual camera", True, ", ".join(cams))]
    caps = "/sys/module/v4l2loopback/parameters/exclusive_caps"
    try:
        value = open(caps).read().strip()
    except OSError:
        value = ""
    exclusive = any(v.strip() in ("Y", "1") for v in value.split(","))
    checks.append(Check("exclusive_caps", exclusive, f"exclusive_caps={value or '?'}",
                        "" if exclusive else f"Chrome/Meet need it: sudo modprobe -r "
                        f"v4l2loopback && {modprobe}"))
    return checks


def run_doctor(avatar: str = "leo") -> list[Check]:
    """Everything a live run needs, each with the fix when it is missing."""
    checks: list[Check] = []
    try:
        info = describe_devices()
        pa = info["portaudio"]
        if pa.get("error"):
            checks.append(Check("PortAudio", False, pa["error"], "sudo apt install libportaudio2"))
        else:
            checks.append(Check("audio inputs", bool(pa["inputs"]),
                                f"{len(pa['inputs'])} found",
                                "" if pa["inputs"] else "plug in a microphone or start "
                                "PulseAudio/PipeWire"))
        p = info["pulse"]
        if p is None:
            checks.append(Check("sound server", sys.platform != "linux",
                                "no PulseAudio/PipeWire server answers",
                                "start PulseAudio or PipeWire (pipewire-pulse); --source "
                                "system and --voice-out need it on Linux"))
        else:
            checks.append(Check("sound server", True,
                                f"default output {p['default_sink']}, input "
                                f"{p['default_source']}"))
            has_mic = pulse.VIRTUAL_MIC_SINK in p["sinks"]
            checks.append(Check("virtual microphone", has_mic,
                                pulse.VIRTUAL_MIC_SOURCE if has_mic else "not set up",
                                "" if has_mic else "avatar-vcam setup-virtual-mic"))
    except EngineError as e:
        checks.append(Check("audio", False, str(e)))
    checks += _v4l2loopback_checks()
    try:
        import torch

        gpu = torch.cuda.is_available()
        checks.append(Check("GPU", True, torch.cuda.get_device_name(0) if gpu else
                            "none: the embedded warp renderer runs on the CPU",
                            "" if gpu else "the liveportrait renderer needs a CUDA GPU"))
    except Exception as e:  # torch import problems are worth reporting, not crashing on
        checks.append(Check("torch", False, str(e), "reinstall torch"))
    try:
        from avatars import load

        a = load(avatar)
        checks.append(Check(f"avatar {avatar}", True, f"{a.display_name}, {a.resolution}px"))
    except EngineError as e:
        checks.append(Check(f"avatar {avatar}", False, str(e)))
    return checks


@click.command("doctor")
@click.option("--avatar", default="leo", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def doctor_cmd(avatar: str, as_json: bool) -> None:
    """Check what a live run needs and print the fix for each missing piece."""
    checks = run_doctor(avatar)
    if as_json:
        click.echo(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        t = Table("", "check", "state", "fix")
        for c in checks:
            t.add_row("[green]ok[/]" if c.ok else "[red]!![/]", escape(c.what), escape(c.detail),
                      escape(c.fix))
        stdout_console().print(t)
    if not all(c.ok for c in checks):
        sys.exit(1)


@click.command("setup-virtual-mic")
@click.option("--remove", is_flag=True, help="Remove the virtual microphone again.")
@click.option("--name", default=pulse.VIRTUAL_MIC_SINK, show_default=True,
              help="Sink name (the daemon's --voice-out).")
@user_errors
def setup_virtual_mic_cmd(remove: bool, name: str) -> None:
    """Create (or --remove) a virtual microphone on PulseAudio/PipeWire (Linux).

    A null sink the daemon plays the delayed voice into, and a microphone source built on
    its monitor that Zoom, Teams and browsers list. Lasts until the sound server restarts.
    """
    source = name + "_src" if name != pulse.VIRTUAL_MIC_SINK else pulse.VIRTUAL_MIC_SOURCE
    if not pulse.available():
        raise EngineError("no PulseAudio/PipeWire server answers; start one (PipeWire: "
                          "systemctl --user start pipewire-pulse) or, on Windows, install "
                          "VB-Cable")
    if remove:
        done = pulse.remove_virtual_mic(name, source)
        click.echo("removed " + ", ".join(done) if done else "nothing to remove")
        return
    done = pulse.setup_virtual_mic(name, source)
    click.echo(("created " + ", ".join(done)) if done else "already set up")
    click.echo(f"In Zoom/Teams pick the microphone '{pulse.VIRTUAL_MIC_DESCRIPTION}' "
               f"({source}); run: avatar-vcam --source mic --sink vcam --voice-out {name}")


def register(cli_group: click.Group) -> None:
    for cmd in (devices_cmd, doctor_cmd, setup_virtual_mic_cmd):
        cli_group.add_command(cmd)
