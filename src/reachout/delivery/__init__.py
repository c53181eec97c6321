"""The delivery vocabulary every domain and carrier shares: statuses, the failure catalogue, channels."""
