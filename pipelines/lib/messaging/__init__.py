"""The messaging engine: plan who is due which step, then send with at-most-once guarantees."""
