//! tandem-wire
