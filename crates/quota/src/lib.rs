#![doc = include_str!("../README.md")]

mod allowance;
mod period;
mod plan;
mod plans;
mod record;

pub use allowance::{Allowance, QuotaExceeded};
pub use period::Period;
pub use plan::Plan;
pub use plans::{Plans, UnknownPlan, UsageSummary};
pub use record::{RecordError, Recorded};
