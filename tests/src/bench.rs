//! Benchmarks: pxeroot side by side with its peers in one run (see tools/bench).
