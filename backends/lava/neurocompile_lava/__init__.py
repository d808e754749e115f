"""Lava (lava-nc 0.10.0) backend for neurocompile.

Modules, in the order a run uses them (only those marked * import Lava, and
only inside the simulation subprocess):

* ``compat``   -- import hook that makes lava-nc importable on Python 3.11+
* ``plan``     -- validate a quantised Network and decide every Lava process (no Lava)
* ``describe`` -- which processes a build uses and whether each runs on stock Loihi 2 (no Lava)
* ``backend``  -- ``LavaBackend``, the ``lava`` entry point (no Lava in the caller's process)
* ``runner``   -- supervise one simulation subprocess; timeouts; cleanup of processes and /dev/shm
* ``worker``   -- the subprocess: build, compile, run, stop; report errors in one line *
* ``lowering`` -- plan → connected Lava processes (RingBuffer, PeriodicLIF, Dense, Sparse) *
* ``procs``    -- the custom PeriodicLIF process and its fixed/float models *
* ``records``  -- file names of the records the models save with np.save
"""
