"""SpikeRecorder: a host-side probe that counts a population's spikes per sample window and saves them."""
