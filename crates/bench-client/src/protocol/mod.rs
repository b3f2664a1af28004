//! The wire protocols: request bodies and response parsing for OpenAI chat / completions and TGI.

pub mod budget;
mod capture;
pub mod request;
pub mod response;
pub mod template;

pub use budget::BufferBudget;
pub use request::{BodyBuilder, Prompt, assistant_message, user_message, user_message_with};
pub use response::Collector;
pub use template::Template;
