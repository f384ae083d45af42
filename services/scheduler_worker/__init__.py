"""scheduler_worker."""
