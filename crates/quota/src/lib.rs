#![doc = include_str!("../README.md")]

mod allowance;
mod ledger;
mod period;
mod plan;

pub use allowance::{Allowance, QuotaExceeded};
pub use ledger::{AccountId, RecordError, Recorded, UsageLedger};
pub use period::Period;
pub use plan::{Plan, Plans, UnknownPlan};
