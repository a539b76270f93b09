//! Synthetic roster generation.
