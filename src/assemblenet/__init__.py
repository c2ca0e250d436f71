"""assemblenet: a faithful and fast PyTorch AssembleNet, its data pipeline, training engine and search."""

from assemblenet.lazy import lazy_attributes

__version__ = "0.1.0"

# Lazy, so that `import assemblenet` (e.g. for the CLI or the data package) does not import torch models.
__getattr__ = lazy_attributes(__name__, {"create_model": "models", "list_models": "models", "model_info": "models"})
