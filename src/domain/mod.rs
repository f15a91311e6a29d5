//! The rules of personal tokens, free of IO: expiration periods, expiry status and labels, the
//! table query, and the type that keeps a token's value out of logs.

mod expiration;
mod listed;
mod query;
mod reminders;
mod rotation;
mod secret;
mod settings;
mod status;
mod token;

pub use expiration::{Expiration, ExpirationError, Unit};
pub use listed::ListedTokens;
pub use query::{Page, PageSize, Query, SortDirection, SortKey};
pub use reminders::{Plan, Reminder, ReminderKind, Severity, Watched, plan, reminder_key, reminders_for};
pub use rotation::successor_name;
pub use secret::Secret;
pub(crate) use secret::last_chars_hint;
pub use settings::{DisplayType, Flavor, Model, Profile, ProfileChoices, ProfileError, choose_model};
pub use status::{ExpiryStatus, WARNING_WINDOW, expiry_label, expiry_status};
pub use token::{MAX_NAME_LEN, RESERVED_NAME, StatusCounts, Token, TokenSummary, check_name};
