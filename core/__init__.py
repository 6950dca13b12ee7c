"""Plain-PyTorch core: datasets, encoders, losses, metrics and the per-epoch training function.

Nothing under ``core`` imports ray or wandb: the search wiring lives in ``search/``.
"""
