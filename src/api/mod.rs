//! The ELITEA HTTP client: the token endpoints, the author and the models of a project.
//!
//! Every failure becomes an [`ApiError`] with a stable [`ErrorKind`]; no error, log line or
//! panic carries a token value.

mod client;
mod error;
mod list;
mod server;
mod wire;

pub use client::{Client, ClientOptions, CreatedToken, ListAnswer};
pub use error::{ApiError, ErrorKind};
pub use list::{ListReader, item_boundary};
pub use server::{ServerUrl, ServerUrlError};
pub use wire::{Author, Models};
