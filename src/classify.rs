//! Classifiers: what a call's result counts as, decided once per policy
//! (see [`Policy`](crate::Policy)) rather than in every call.
//!
//! A classifier is a plain generic value, so the compiler inlines it into
//! the call: a [`Policy`](crate::Policy) with a classifier costs what
//! [`CircuitBreaker::call_with`](crate::CircuitBreaker::call_with) with the
//! same closure costs, and the plain `call` is untouched.

use crate::permit::Outcome;
use std::io;

/// Decides what a result counts as.
///
/// Any `Fn(&Result<T, E>) -> Outcome` is one.
///
/// ```
/// use nanobreaker::{Classifier, Outcome};
/// let not_found_is_fine = |r: &Result<u32, u16>| match r {
///     Err(404) => Outcome::Ignored,
///     Err(_) => Outcome::Failure,
///     Ok(_) => Outcome::Success,
/// };
/// assert_eq!(not_found_is_fine.classify(&Err(404)), Outcome::Ignored);
/// ```
pub trait Classifier<T, E> {
    /// What `result` counts as.
    fn classify(&self, result: &Result<T, E>) -> Outcome;
}

impl<T, E, F: Fn(&Result<T, E>) -> Outcome> Classifier<T, E> for F {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        self(result)
    }
}

/// The default: `Ok` is a success, `Err` a failure.
///
/// ```
/// use nanobreaker::{classify::ErrIsFailure, Classifier, Outcome};
/// assert_eq!(ErrIsFailure.classify(&Err::<(), _>(())), Outcome::Failure);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ErrIsFailure;

impl<T, E> Classifier<T, E> for ErrIsFailure {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        }
    }
}

/// What an HTTP status counts as: 5xx, 408 (timeout) and 429 (too many
/// requests) are failures of the server; any other 4xx is the client's
/// mistake and ignored; everything else is a success.
///
/// ```
/// use nanobreaker::{classify::http_status, Outcome};
/// assert_eq!(http_status(503), Outcome::Failure);
/// assert_eq!(http_status(429), Outcome::Failure);
/// assert_eq!(http_status(404), Outcome::Ignored);
/// assert_eq!(http_status(200), Outcome::Success);
/// ```
pub const fn http_status(status: u16) -> Outcome {
    match status {
        408 | 429 | 500..=599 => Outcome::Failure,
        400..=499 => Outcome::Ignored,
        _ => Outcome::Success,
    }
}

/// A value that may carry an HTTP status: a response (always), or an
/// error (when the server answered; `None` for a transport error, which
/// is a failure). Implement it for your client's types.
pub trait HttpStatusOf {
    /// The status, if there is one.
    fn http_status(&self) -> Option<u16>;
}

impl HttpStatusOf for u16 {
    fn http_status(&self) -> Option<u16> {
        Some(*self)
    }
}

/// Classifies by HTTP status ([`http_status`]): of the response when the
/// call returned `Ok`, of the error when it has one; an error without a
/// status (connection refused, reset) is a failure.
///
/// ```
/// use nanobreaker::{classify::HttpStatus, Classifier, Outcome};
/// assert_eq!(HttpStatus.classify(&Ok::<u16, u16>(502)), Outcome::Failure);
/// assert_eq!(HttpStatus.classify(&Err::<u16, u16>(404)), Outcome::Ignored);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpStatus;

impl<T: HttpStatusOf, E: HttpStatusOf> Classifier<T, E> for HttpStatus {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        match result {
            Ok(r) => r.http_status().map_or(Outcome::Success, http_status),
            Err(e) => e.http_status().map_or(Outcome::Failure, http_status),
        }
    }
}

/// gRPC status codes, as numbered by the gRPC specification.
pub mod grpc {
    /// OK.
    pub const OK: i32 = 0;
    /// CANCELLED.
    pub const CANCELLED: i32 = 1;
    /// UNKNOWN.
    pub const UNKNOWN: i32 = 2;
    /// DEADLINE_EXCEEDED.
    pub const DEADLINE_EXCEEDED: i32 = 4;
    /// NOT_FOUND.
    pub const NOT_FOUND: i32 = 5;
    /// RESOURCE_EXHAUSTED.
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    /// INTERNAL.
    pub const INTERNAL: i32 = 13;
    /// UNAVAILABLE.
    pub const UNAVAILABLE: i32 = 14;
}

/// What a gRPC status code counts as: UNAVAILABLE, DEADLINE_EXCEEDED,
/// RESOURCE_EXHAUSTED, INTERNAL and UNKNOWN are failures; OK is a success;
/// every other code (the caller's mistakes, CANCELLED) is ignored.
///
/// ```
/// use nanobreaker::{classify::{grpc, grpc_code}, Outcome};
/// assert_eq!(grpc_code(grpc::UNAVAILABLE), Outcome::Failure);
/// assert_eq!(grpc_code(grpc::NOT_FOUND), Outcome::Ignored);
/// assert_eq!(grpc_code(grpc::OK), Outcome::Success);
/// ```
pub const fn grpc_code(code: i32) -> Outcome {
    match code {
        grpc::OK => Outcome::Success,
        grpc::UNKNOWN
        | grpc::DEADLINE_EXCEEDED
        | grpc::RESOURCE_EXHAUSTED
        | grpc::INTERNAL
        | grpc::UNAVAILABLE => Outcome::Failure,
        _ => Outcome::Ignored,
    }
}

/// An error that carries a gRPC status code (implement it for your
/// client's status type, e.g. `tonic::Status` via `code() as i32`).
pub trait GrpcCodeOf {
    /// The code.
    fn grpc_code(&self) -> i32;
}

impl GrpcCodeOf for i32 {
    fn grpc_code(&self) -> i32 {
        *self
    }
}

/// Classifies an `Err` by its gRPC code ([`grpc_code`]); `Ok` is a success.
///
/// ```
/// use nanobreaker::{classify::{grpc, GrpcCode}, Classifier, Outcome};
/// assert_eq!(GrpcCode.classify(&Err::<(), i32>(grpc::INTERNAL)), Outcome::Failure);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcCode;

impl<T, E: GrpcCodeOf> Classifier<T, E> for GrpcCode {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(e) => grpc_code(e.grpc_code()),
        }
    }
}

/// What an I/O error kind counts as: the caller's own mistakes (not found,
/// permission denied, already exists, invalid input or data, unsupported)
/// and interruptions are ignored; everything else (refused, reset, timed
/// out, broken pipe, unexpected EOF, other) is a failure of the dependency.
///
/// ```
/// use nanobreaker::{classify::io_error_kind, Outcome};
/// use std::io::ErrorKind;
/// assert_eq!(io_error_kind(ErrorKind::ConnectionRefused), Outcome::Failure);
/// assert_eq!(io_error_kind(ErrorKind::NotFound), Outcome::Ignored);
/// ```
pub fn io_error_kind(kind: io::ErrorKind) -> Outcome {
    use io::ErrorKind::*;
    match kind {
        NotFound | PermissionDenied | AlreadyExists | InvalidInput | InvalidData | Unsupported
        | Interrupted => Outcome::Ignored,
        _ => Outcome::Failure,
    }
}

/// Classifies an `io::Error` by its kind ([`io_error_kind`]); `Ok` is a
/// success.
///
/// ```
/// use nanobreaker::{classify::IoErrorKind, Classifier, Outcome};
/// use std::io;
/// let r: Result<(), io::Error> = Err(io::ErrorKind::TimedOut.into());
/// assert_eq!(IoErrorKind.classify(&r), Outcome::Failure);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct IoErrorKind;

impl<T> Classifier<T, io::Error> for IoErrorKind {
    #[inline]
    fn classify(&self, result: &Result<T, io::Error>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(e) => io_error_kind(e.kind()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_http_status_class() {
        for s in 100..600u16 {
            let want = match s {
                408 | 429 => Outcome::Failure,
                400..=499 => Outcome::Ignored,
                500..=599 => Outcome::Failure,
                _ => Outcome::Success,
            };
            assert_eq!(http_status(s), want, "{s}");
        }
    }

    #[test]
    fn every_grpc_code() {
        let failures = [2, 4, 8, 13, 14];
        for c in 0..=16 {
            let want = if c == 0 {
                Outcome::Success
            } else if failures.contains(&c) {
                Outcome::Failure
            } else {
                Outcome::Ignored
            };
            assert_eq!(grpc_code(c), want, "{c}");
        }
    }
}
