//! Hash maps keyed by the ids of records and events, on the engine's hot
//! path (the working state, the state cache, the rows written behind).
//!
//! foldhash instead of std's SipHash: hashing short ids was ~2 % of a
//! drain. It is seeded at random per process, so that a stranger choosing
//! event and record ids cannot plan collisions (as with an unseeded hash
//! such as FxHash); it comes with hashbrown already, no new crate.

pub type IdMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub type IdSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
