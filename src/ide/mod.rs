//! IDE settings: what ELITEA's editor extensions read, and the writers that put it into a
//! workspace without disturbing anything else there.

pub mod files;
pub mod git;
pub mod jetbrains;
pub mod vscode;

pub use files::{PlannedFile, TOKEN_PLACEHOLDER, WrittenFile, plan, token_file, write};
pub use git::GitStatus;
