//! Diffing incoming records against stored ones.
