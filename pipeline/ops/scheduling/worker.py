"""`python -m pipeline.ops.scheduling.worker --run-id ID ROUTE`: one scheduled run in its own process."""

import sys

from pipeline.ops.scheduling.jobs import worker_main

if __name__ == "__main__":
    sys.exit(worker_main())
