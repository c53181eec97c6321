"""The event log (one record per state change), customer webhook endpoints and their signed deliveries."""
