//! One module per group of subcommands.

pub mod demo;
mod flood;
pub mod keys;
pub mod ping;
mod relay;
pub mod run;
pub mod top;
pub mod transfer;
mod worker;
