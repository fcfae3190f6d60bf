//! The node configuration (`vine.toml`): model, defaults, parser and
//! validator.
//!
//! [`parse`] never stops at the first problem: it walks the whole document and
//! returns every finding as a [`Diagnostic`] with a line, a column and a fix,
//! plus the [`Config`] when there is no error. Checks that need the outside
//! world (file modes, the identity file) are made by the host layer, which
//! places its findings with [`Parsed::locate`].

mod diagnostic;
mod document;
mod model;
mod parse;
mod policy;
mod template;
mod validate;

pub use diagnostic::{Diagnostic, LineIndex, Location, Severity};
pub use model::*;
pub use parse::parse;
pub use template::{TemplateParams, template};
pub use validate::{validate_network_id, validate_node_name, validate_tun_name};

#[cfg(test)]
mod tests;
