"""Fleet mode (SPEC §7)."""
