//! A tower layer (feature `tower`): a breaker in front of any
//! `tower::Service`, such as hyper-util's client, a tonic `Channel`, or an
//! axum/hyper service.
//!
//! ```
//! use nanobreaker::layer::{CircuitBreakerLayer, HttpResponse};
//! use nanobreaker::CircuitBreaker;
//! use std::sync::Arc;
//! use tower_layer::Layer;
//! let cb = Arc::new(CircuitBreaker::builder().build().unwrap());
//! let inner = tower::service_fn(|_req: http::Request<()>| async {
//!     Ok::<_, std::io::Error>(http::Response::builder().status(503).body(()).unwrap())
//! });
//! let svc = CircuitBreakerLayer::new(cb.clone()).classifier(HttpResponse).layer(inner);
//! # let _ = svc;
//! ```
//!
//! # What a request does
//!
//! `call` asks the breaker for a permit. Rejected: the inner service is
//! not called, and the response future resolves at once to
//! [`Error::Rejected`] (with `retry_after`). Admitted: the inner service's
//! future is wrapped, and holds the permit until it completes; its result
//! is classified then (the layer's [`Classifier`]: `Err` is a failure by
//! default; [`HttpResponse`] reads the status; [`GrpcResponse`] the
//! `grpc-status` header). A response future dropped before it completes
//! (the caller gave up, a timeout layer above fired) records nothing: its
//! outcome is ignored and a half-open probe slot is given back. The time a
//! slow-call rule sees runs from `call` to the future's completion: for an
//! HTTP client, until the response head arrives, not the end of the body.
//!
//! # Readiness
//!
//! `poll_ready` is the inner service's: an open breaker is reported at call
//! time, as an error, never through readiness. Reporting it through
//! `poll_ready` (returning `Pending` while open) would make a caller wait
//! out the open state instead of failing fast and taking its fallback,
//! which is the point of a breaker; `tower::balance` and `Buffer` would
//! park requests behind it. Returning an error from `poll_ready` would
//! break the service for good (tower's contract: a service whose
//! `poll_ready` failed is unusable). And with a breaker per host the
//! breaker is not known until the request is: readiness cannot depend on
//! it. This is what `tower::load_shed` does for an overloaded service, for
//! the same reasons.
//!
//! # One breaker per host
//!
//! [`CircuitBreakerLayer::keyed`] picks the breaker from a [`Registry`] by
//! a key of the request ([`ByAuthority`]: the URI's host and port, else
//! the `Host` header), so one bad upstream does not open the door for the
//! others. If the request has no key, or the registry cannot give a
//! breaker (it is full of open ones, or the key is too long), the request
//! goes through unprotected and unrecorded: the breaker fails open, never
//! the service. (A server keying by the `Host` header of its clients lets
//! them choose breakers: key by what you call, not by who calls.)

use crate::breaker::CircuitBreaker;
use crate::classify::{grpc_code, http_status, Classifier, ErrIsFailure};
use crate::permit::{Error, Outcome, OwnedPermit, Rejected};
use crate::registry::Registry;
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

/// Where a request's breaker comes from: one shared breaker (an
/// `Arc<CircuitBreaker>`), or a registry by key ([`Keyed`]).
pub trait BreakerFor<Req> {
    /// The breaker for `req`, or `None` to let it through unprotected.
    fn breaker_for(&self, req: &Req) -> Option<Arc<CircuitBreaker>>;
}

impl<Req> BreakerFor<Req> for Arc<CircuitBreaker> {
    #[inline]
    fn breaker_for(&self, _: &Req) -> Option<Arc<CircuitBreaker>> {
        Some(self.clone())
    }
}

/// The key of a request, naming its breaker in a registry; `None` lets
/// the request through unprotected.
pub trait KeyOf<Req> {
    /// The key (borrowed from the request when it can be).
    fn key<'r>(&self, req: &'r Req) -> Option<Cow<'r, str>>;
}

impl<Req, F: Fn(&Req) -> Option<String>> KeyOf<Req> for F {
    fn key<'r>(&self, req: &'r Req) -> Option<Cow<'r, str>> {
        self(req).map(Cow::Owned)
    }
}

/// Keys an HTTP request by its upstream, `host:port`: the host lowercased
/// (never the userinfo of `user:pass@host`), the port explicit or the
/// scheme's (80, 443), from the URI, else from the `Host` header. A
/// request with neither has no key and goes through unprotected: a tonic
/// `Channel` sends path-only URIs, so key it by its endpoint with a
/// closure, or give each endpoint its own `CircuitBreakerLayer::new`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ByAuthority;

impl<B> KeyOf<http::Request<B>> for ByAuthority {
    fn key<'r>(&self, req: &'r http::Request<B>) -> Option<Cow<'r, str>> {
        let uri = req.uri();
        let from_header;
        let authority = match uri.authority() {
            Some(a) => a,
            None => {
                let host = req.headers().get(http::header::HOST)?.to_str().ok()?;
                from_header = host.parse::<http::uri::Authority>().ok()?;
                &from_header
            }
        };
        let port = authority.port_u16().unwrap_or(if uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
            443
        } else {
            80
        });
        Some(Cow::Owned(format!("{}:{port}", authority.host().to_ascii_lowercase())))
    }
}

/// Breakers from a registry, by a key of the request.
#[derive(Clone, Debug)]
pub struct Keyed<K> {
    registry: Arc<Registry>,
    key: K,
}

impl<Req, K: KeyOf<Req>> BreakerFor<Req> for Keyed<K> {
    fn breaker_for(&self, req: &Req) -> Option<Arc<CircuitBreaker>> {
        self.registry.get(&self.key.key(req)?).ok()
    }
}

/// Classifies an HTTP response by its status ([`http_status`]: 5xx, 408
/// and 429 are failures, other 4xx ignored); an `Err` (no response: a
/// connection refused, reset or timed out) is a failure.
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpResponse;

impl<B, E> Classifier<http::Response<B>, E> for HttpResponse {
    #[inline]
    fn classify(&self, result: &Result<http::Response<B>, E>) -> Outcome {
        match result {
            Ok(r) => http_status(r.status().as_u16()),
            Err(_) => Outcome::Failure,
        }
    }
}

/// Classifies a gRPC response (HTTP/2) by its `grpc-status` header
/// ([`grpc_code`]): a server that fails a call before sending any message
/// answers with a trailers-only response, whose status is in the headers.
/// A response without one in its headers is a success (its status comes
/// in the trailers, after the messages, which this layer does not wait
/// for); a `grpc-status` that is not a number is UNKNOWN, a failure, as
/// gRPC clients read it. An HTTP status other than 200 is judged as
/// [`HttpResponse`] does, except that one it calls a success (1xx, 2xx,
/// 3xx) is UNKNOWN for gRPC, a failure. An `Err` is a failure.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcResponse;

impl<B, E> Classifier<http::Response<B>, E> for GrpcResponse {
    fn classify(&self, result: &Result<http::Response<B>, E>) -> Outcome {
        let Ok(r) = result else { return Outcome::Failure };
        if r.status() != http::StatusCode::OK {
            return match http_status(r.status().as_u16()) {
                Outcome::Success => Outcome::Failure,
                other => other,
            };
        }
        let Some(status) = r.headers().get("grpc-status") else { return Outcome::Success };
        let code = status.to_str().ok().and_then(|v| v.parse::<i32>().ok());
        grpc_code(code.unwrap_or(crate::classify::grpc::UNKNOWN))
    }
}

/// Puts a breaker in front of a service (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct CircuitBreakerLayer<B, C = ErrIsFailure> {
    breakers: B,
    classifier: C,
}

impl CircuitBreakerLayer<Arc<CircuitBreaker>> {
    /// Every request through `breaker`.
    pub fn new(breaker: Arc<CircuitBreaker>) -> Self {
        CircuitBreakerLayer { breakers: breaker, classifier: ErrIsFailure }
    }
}

impl<K> CircuitBreakerLayer<Keyed<K>> {
    /// Each request through the breaker of its key in `registry` (made on
    /// first use from the registry's templates).
    ///
    /// ```
    /// use nanobreaker::layer::{ByAuthority, CircuitBreakerLayer, HttpResponse};
    /// use nanobreaker::Registry;
    /// use std::sync::Arc;
    /// let reg = Arc::new(Registry::builder().build().unwrap());
    /// let layer = CircuitBreakerLayer::keyed(reg, ByAuthority).classifier(HttpResponse);
    /// # let _ = layer;
    /// ```
    pub fn keyed(registry: Arc<Registry>, key: K) -> Self {
        CircuitBreakerLayer { breakers: Keyed { registry, key }, classifier: ErrIsFailure }
    }
}

impl<B, C> CircuitBreakerLayer<B, C> {
    /// How responses count (default: `Ok` is a success, `Err` a failure).
    pub fn classifier<D>(self, classifier: D) -> CircuitBreakerLayer<B, D> {
        CircuitBreakerLayer { breakers: self.breakers, classifier }
    }
}

impl<S, B: Clone, C: Clone> tower_layer::Layer<S> for CircuitBreakerLayer<B, C> {
    type Service = CircuitBreakerService<S, B, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService { inner, breakers: self.breakers.clone(), classifier: self.classifier.clone() }
    }
}

/// The service [`CircuitBreakerLayer`] makes.
#[derive(Clone, Debug)]
pub struct CircuitBreakerService<S, B, C> {
    inner: S,
    breakers: B,
    classifier: C,
}

impl<S, B, C> CircuitBreakerService<S, B, C> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, Req, B, C> tower_service::Service<Req> for CircuitBreakerService<S, B, C>
where
    S: tower_service::Service<Req>,
    B: BreakerFor<Req>,
    C: Classifier<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = Error<S::Error>;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // An open breaker is reported at call time (see "Readiness").
        self.inner.poll_ready(cx).map_err(Error::Inner)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let permit = match self.breakers.breaker_for(&req).map(|cb| cb.try_acquire_owned()) {
            Some(Ok(p)) => Some(p),
            Some(Err(rejected)) => return ResponseFuture { kind: Kind::Rejected { rejected } },
            None => None, // fail open: unprotected, unrecorded
        };
        ResponseFuture {
            kind: Kind::Called { future: self.inner.call(req), permit, classifier: self.classifier.clone() },
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`CircuitBreakerService`]: the inner future
    /// and the permit it holds until it completes.
    pub struct ResponseFuture<F, C> {
        #[pin]
        kind: Kind<F, C>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<F, C> {
        Rejected { rejected: Rejected },
        Called { #[pin] future: F, permit: Option<OwnedPermit>, classifier: C },
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    C: Classifier<T, E>,
{
    type Output = Result<T, Error<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Rejected { rejected } => Poll::Ready(Err(Error::Rejected(*rejected))),
            KindProj::Called { future, permit, classifier } => {
                let result = ready!(future.poll(cx));
                if let Some(p) = permit.take() {
                    p.record(classifier.classify(&result));
                }
                Poll::Ready(result.map_err(Error::Inner))
            }
        }
    }
}

impl<F, C> std::fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
