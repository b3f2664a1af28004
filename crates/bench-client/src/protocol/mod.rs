//! The wire protocols: request bodies and response parsing for OpenAI chat / completions and TGI.

pub mod budget;
pub mod request;
pub mod response;

pub use budget::BufferBudget;
pub use request::{BodyBuilder, Prompt, assistant_message, user_message};
pub use response::Collector;
