//! A pipeline that records nothing: the other pipeline alone, in tests of the fan-out, or
//! wherever one side of the facade is not wanted.
use std::sync::Arc;

use crate::backend::{Backend, Emit, Pipeline, SeriesWalk};
use crate::error::ShutdownError;
use crate::instrument::{KindSpec, Spec};

/// Records nothing, keeps nothing (its instrument and series parts take no memory).
#[derive(Debug, Default, Clone, Copy)]
pub struct Noop;

impl<K: KindSpec> Pipeline<K> for Noop {
    type Instrument = ();
    type Series = ();

    fn instrument(&self, _: &Spec, _: Arc<dyn SeriesWalk<()>>) {}

    fn series(_: &()) {}

    #[inline]
    fn record(_: &(), _: &(), _: K::Value, _: Emit<'_>) {}
}

impl Backend for Noop {
    const NAME: &'static str = "noop";

    fn flush(&self) -> Result<(), ShutdownError> {
        Ok(())
    }

    fn shutdown(&self, _deadline: std::time::Duration) -> Result<(), ShutdownError> {
        Ok(())
    }
}
