"""What every adapter shares: settings, length-sorted batches, automatic batch sizes, the pipelined batch loop, data parallelism."""
