"""Vlit's distributed training worker (run by torchrun: ``python -m torch.distributed.run ... -m vlit_worker job.json``)."""

__version__ = "0.1.0"
