//! Applying an import plan through a store transaction.
