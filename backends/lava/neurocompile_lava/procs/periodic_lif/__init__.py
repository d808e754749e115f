"""PeriodicLIF: Lava's LIF dynamics with per-sample reset, subtractive reset and file records."""
