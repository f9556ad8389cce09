//! SavedModel directories (filled in by the savedmodel work).
