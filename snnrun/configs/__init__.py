"""The packaged Hydra config tree."""

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
