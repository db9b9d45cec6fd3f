"""The edge node: cameras -> detection -> tracking -> rules -> evidence -> outbox -> MQTT."""
