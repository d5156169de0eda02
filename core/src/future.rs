//! The boxed future the host API's back ends hand out.

use std::{future::Future, pin::Pin};

/// A boxed future, as the outlet and the I/O back ends hand them out.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
