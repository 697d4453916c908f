//! The standard octolink couriers.
//!
//! Each courier here is built only on the public [`octolink::Courier`] trait,
//! exactly as an application's own courier would be.
#![forbid(unsafe_code)]

pub use octolink::{Courier, CourierId, Mandate};
