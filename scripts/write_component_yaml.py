"""Write the missing ``snnrun/configs/<group>/<name>.yaml`` of registered components from their schemas.

Usage: python scripts/write_component_yaml.py   (existing files are left alone)
"""

from pathlib import Path

import yaml

from snnrun.catalog import registries
from snnrun.schema import describe

GROUPS = {"neuron": "neuron", "encoder": "encoder", "decoder": "decoder", "synapse": "synapse", "reward": "reward"}
ROOT = Path(__file__).resolve().parents[1] / "snnrun" / "configs"

for kind, group in GROUPS.items():
    registry = registries()[kind]
    for name in registry.names(aliases=False):
        path = ROOT / group / f"{name}.yaml"
        if path.exists():
            continue
        cls = registry.get(name)
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        lines = [f"# {doc}", f"name: {name}"]
        for field, _, default, unit, help_text in describe(cls.Params):
            value = yaml.safe_dump(default, default_flow_style=True).strip().removesuffix("...").strip()
            comment = " ".join(x for x in [f"[{unit}]" if unit else "", help_text] if x)
            lines.append(f"{field}: {value}" + (f"   # {comment}" if comment else ""))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        print("wrote", path)
