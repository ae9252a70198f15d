//! wgpu backend of wapo-rs.
