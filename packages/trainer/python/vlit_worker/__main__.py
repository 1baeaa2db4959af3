"""Entry point: ``python -m vlit_worker <job.json>`` (one process per rank, started by torchrun)."""
import sys

from .train import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
