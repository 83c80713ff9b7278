//! inboxd's benchmarks, apart from the daemon's binary: the workload
//! benchmark (`inboxd-bench`) and, under `benches/`, the criterion
//! benches of the engine.

pub mod bench;
