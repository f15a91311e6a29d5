//! elitea-tokens: manage ELITEA personal access tokens from the terminal and the IDE.
//!
//! Layers (see `docs/architecture.md`): `domain` holds the rules and does no IO; `api` is the
//! ELITEA HTTP client; `service` sequences the operations users name; `cli` is the command
//! line; `sandbox` is an ELITEA-compatible server for trying the tool and for tests.

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod domain;
pub mod error;
pub mod fsx;
pub mod ide;
pub mod memory;
pub mod paths;
pub mod reminders;
pub mod sandbox;
pub mod secrets;
pub mod service;
pub mod session;
pub mod state;
