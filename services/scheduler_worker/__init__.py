"""scheduler-worker: the monthly trigger and the SQS consumers (``python -m scheduler_worker``)."""
