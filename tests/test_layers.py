"""The import layers. Packages: devices <- rules <- sim, and rules stays pure. Inside sim: the world
imports no MQTT, report or command code; the MQTT side no report or command code; the shared files
helpers nothing above them."""

from __future__ import annotations

from pathlib import Path

import pytest
from importgraph import imported_names, modules_under

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "devices": ("rules", "sim", "paho"),
    "rules": ("sim", "simpy", "paho"),
    "sim.world": ("sim.mqtt", "sim.report", "sim.commands", "sim.runner", "sim.replay", "paho"),
    "sim.mqtt": ("sim.report", "sim.commands", "sim.runner", "sim.replay"),
    "sim.report": ("sim.commands", "sim.runner", "sim.replay", "sim.mqtt"),
    "sim.files": (
        "sim.world",
        "sim.mqtt",
        "sim.report",
        "sim.commands",
        "sim.runner",
        "sim.replay",
    ),
}


def violations(layer: str, base: Path = ROOT) -> dict[str, list[str]]:
    """Module -> the forbidden names it imports, for every module of ``layer``."""
    top = layer.split(".")[0]
    modules = {
        m: p
        for m, p in modules_under(base, [top]).items()
        if m == layer or m.startswith(layer + ".")
    }
    assert modules, f"no modules found in {layer}"
    bad: dict[str, list[str]] = {}
    for module, path in modules.items():
        hits = sorted(
            name
            for name in imported_names(path, module)
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[layer])
        )
        if hits:
            bad[module] = hits
    return bad


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_does_not_import_the_layers_above_it(layer: str) -> None:
    assert violations(layer) == {}


def test_the_checker_sees_every_kind_of_import(tmp_path: Path) -> None:
    world = tmp_path / "sim" / "world"
    world.mkdir(parents=True)
    (tmp_path / "sim" / "__init__.py").write_text("")
    (world / "__init__.py").write_text("")
    (world / "ok.py").write_text(
        "from sim.world import other\nimport numpy\nfrom sim.errors import E\n"
    )
    (world / "bad.py").write_text(
        "def f():\n    from ..mqtt import client\n"
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import sim.report.page\n"
    )
    assert violations("sim.world", tmp_path) == {
        "sim.world.bad": ["sim.mqtt.client", "sim.report.page"]
    }
