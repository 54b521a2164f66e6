"""Sending again what was given up on, or what a webhook missed: dead letters and events read
back from Kafka by time. The API and the CLI plan replays here; workers run them."""
