//! Loom model checks of the nanobreaker engine; see tests/.
