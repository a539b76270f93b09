//! OneRoster 1.2 CSV bundles (stub: being written).
