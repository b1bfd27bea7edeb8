"""Stage 2: the device: serial protocol, one session over a port, capture, boards, faults."""
