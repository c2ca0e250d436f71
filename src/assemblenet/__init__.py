"""assemblenet: a faithful and fast PyTorch AssembleNet, its data pipeline, training engine and search."""

__version__ = "0.1.0"
