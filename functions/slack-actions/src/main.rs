//! The `slack-actions` Lambda binary.

fn main() {}
