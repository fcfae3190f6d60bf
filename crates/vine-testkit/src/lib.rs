//! # vine-testkit
//!
//! Test support for vine (being written).
