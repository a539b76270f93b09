//! Store traits.
