//! Accounts and how a person proves who they are: password hashing and the
//! password policy, activation codes and the lockout rule, session tokens;
//! second factors join them. Nothing in this module touches a database or
//! HTTP.

pub mod account;
pub mod cards;
pub mod factors;
pub mod login;
pub mod mydata;
pub mod password;
pub mod recovery;
pub mod rights;
pub mod session;
pub mod stepup;
pub mod totp;

pub use password::{
    hash_password, is_blocklisted, needs_rehash, verify_password, HashParams, PasswordContext,
    Policy, PolicyProblem,
};
