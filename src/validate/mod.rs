//! Output comparison for validation (filled in by the validate work).
