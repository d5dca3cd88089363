//! In-memory tests of serving requests: the engine's orchestration driven as clients drive it.

mod memory;
