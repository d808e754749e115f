"""FailingLIF: a PeriodicLIF whose model raises, to test how failed Lava runs are supervised."""
