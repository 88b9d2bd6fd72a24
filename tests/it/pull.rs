//! The mirror: full and incremental pulls.
