//! elitea-tokens: manage ELITEA personal access tokens from the terminal and the IDE.
//!
//! Layers (see `docs/architecture.md`): `domain` holds the rules and does no IO; `api` is the
//! ELITEA HTTP client; `sandbox` is an ELITEA-compatible server; `cli` is the command line.

pub mod api;
pub mod clock;
pub mod domain;
pub mod sandbox;
