//! CPU backend of wapo-rs.
