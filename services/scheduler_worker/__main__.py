"""``python -m scheduler_worker``: consume the billing-jobs and stripe-events queues until SIGTERM."""

import sys

from scheduler_worker.worker import main

if __name__ == "__main__":
    sys.exit(main())
