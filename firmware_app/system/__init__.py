"""The service's place in the system: systemd notify, the C heap, metrics, the store."""
