//! Point 3: a 500 to a PUT is retried first; only a persistent 500 naming a
//! reference the mirror does not know is `reference_rejected`.
