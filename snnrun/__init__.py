"""snnrun: spiking-neural-network experiments as Hydra configs."""

__version__ = "0.1.0"
