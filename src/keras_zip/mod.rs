//! The `.keras` zip archive (filled in by the keras_zip work).
