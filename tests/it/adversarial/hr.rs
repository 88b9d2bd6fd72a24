//! Bad HR sources: see the module doc of `adversarial`.
