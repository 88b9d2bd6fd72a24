//! Bad configs: see the module doc of `adversarial`.
