"""reachout's own API under /api/v1/: the event log, webhook endpoints, attempts, replay and recovery."""
