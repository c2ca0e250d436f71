"""assemblenet: a faithful and fast PyTorch AssembleNet, its data pipeline, training engine and search."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy, so that `import assemblenet` (e.g. for the CLI or the data package) does not import torch models.
    if name in ("create_model", "list_models", "model_info"):
        from assemblenet import models

        return getattr(models, name)
    raise AttributeError(f"module 'assemblenet' has no attribute {name!r}")
