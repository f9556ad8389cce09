//! Versioned artifact store (filled in by the store work).
