"""hookline: delivers an organization's domain events from Kafka to its webhooks."""

__version__ = "0.1.0"
