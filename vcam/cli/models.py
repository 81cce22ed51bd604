"""``avatar-vcam models``: fetch and list downloaded model weights.

    register(cli)    # adds the `models` group (fetch, list) to the main group
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from .errors import user_errors
from .tables import stdout_console

MODELS = ("liveportrait",)
EXAMPLES = """
\b
Examples:
  avatar-vcam models fetch liveportrait                  # from huggingface.co (~500 MB)
  avatar-vcam models fetch liveportrait --from ~/Downloads/liveportrait
  avatar-vcam models list --verify
"""
console = Console(stderr=True)


@click.group("models", epilog=EXAMPLES)
def models_group() -> None:
    """Download and inspect model weights (LivePortrait)."""


@models_group.command("fetch", epilog=EXAMPLES)
@click.argument("name", type=click.Choice(MODELS))
@click.option("--from", "src", type=click.Path(path_type=Path),
              help="Import files downloaded by hand from this folder instead of downloading.")
@click.option("--revision", default="main", show_default=True, help="Hub revision to fetch.")
@user_errors
def fetch_cmd(name: str, src: Path | None, revision: str) -> None:
    """Download NAME's official weights (or import them with --from), verify, record.

    They go to the user cache, or under $AVATAR_VCAM_MODELS when that is set.
    """
    from engine.renderers.liveportrait import weights

    dest = weights.default_dir()
    if src is not None:
        records = weights.import_from(src, dest, log=lambda s: console.print(f"  {s}"))
    else:
        console.print(f"fetching {weights.REPO_ID} into {dest}")
        records = weights.fetch(dest, revision, log=lambda s: console.print(f"  {s}"))
    total = sum(r.size for r in records)
    console.print(f"installed {len(records)} files ({total / 1e6:.0f} MB), checked against the "
                  f"networks, sizes and sha256 recorded in {dest / weights.RECORD}")


@models_group.command("list")
@click.option("--verify", is_flag=True, help="Recompute sha256 against the recorded ones.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def list_cmd(verify: bool, as_json: bool) -> None:
    """Show which model files are installed, and whether they are intact."""
    from engine.renderers.liveportrait import weights

    dest = weights.default_dir()
    rows = weights.status(dest, verify=verify)
    if as_json:
        click.echo(json.dumps({"liveportrait": {"dir": str(dest), "files": [
            {"network": r.network, "path": r.path, "state": r.state, "size": r.size}
            for r in rows]}}))
        return
    table = Table("model", "network", "state", "size", "file", title=str(dest))
    for r in rows:
        size = f"{r.size / 1e6:.1f} MB" if r.size is not None else "-"
        table.add_row("liveportrait", r.network, r.state, size, r.path)
    stdout_console().print(table)
    if any(r.state == "missing" for r in rows):
        console.print("missing files: run `avatar-vcam models fetch liveportrait`")


def register(cli: click.Group) -> None:
    """Add the ``models`` group to the main command group."""
    cli.add_command(models_group)
