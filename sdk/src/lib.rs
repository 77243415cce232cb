//! dualmetrics (work in progress)
