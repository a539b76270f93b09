//! The roster: institutions, persons, their roles, groups, memberships and
//! contact-person relations, as delivered by the institutions' administrative
//! systems; how they are imported, diffed and generated.

pub mod apply;
pub mod diff;
pub mod import;
pub mod model;
pub mod synth;

pub use model::*;
