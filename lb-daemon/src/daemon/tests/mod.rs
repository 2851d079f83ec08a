//! Unit tests of the main loop's pure parts.

mod desired;
