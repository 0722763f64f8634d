//! The C ABI (see nanobreaker.h).
