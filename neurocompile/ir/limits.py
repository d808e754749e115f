"""Bounds on what an IR network may hold, shared by the data model, its checks and the passes' option checks."""

MAX_TIMESTEPS = 4096
"""Time steps per sample at most: one period's frames and state must fit in memory, and rate-coded
conversion reaches the ANN's accuracy long before (the accuracy-vs-T sweep in every report shows it)."""
MAX_SEED = 2**32  # exclusive: numpy and scikit-learn accept seeds in [0, 2**32)
MAX_POPULATION_SIZE = 1 << 24  # neurons in one population of a loaded artifact
MAX_CONV_TAPS = 1 << 28  # C_out * C_in/groups * kH * kW * H_out * W_out of one conv projection
SUPPORTED_DELAYS = (1,)
"""Synaptic delays (steps) every simulator and backend implements: Lava's Dense/Sparse deliver after one step."""
