"""The link to the device: serial protocol, capture session, board runners (flash/stop)."""
