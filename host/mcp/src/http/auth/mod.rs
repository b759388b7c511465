//! Verifying an HTTP request's credentials and turning them into the
//! [`Principal`] whose tasks it may touch.
//!
//! The `Authorization` header is read as RFC 9110 and RFC 6750 say (the
//! scheme case-insensitive). The verifiers:
//!
//! - [`JwtVerifier`]: OAuth access tokens as a resource server validates
//!   them (signature against a JWKS, issuer, audience, lifetime); the
//!   owner is the issuer and subject, so a refreshed token keeps its tasks;
//! - [`StaticTokens`]: a file of tokens and subjects, for small deployments;
//! - [`TrustedHeader`]: an identity a reverse proxy verified and set;
//! - [`TokenDigest`]: development only, every token an owner of its own.
//!
//! A request whose credentials cannot be used (another scheme, no token,
//! a token the verifier refuses) is refused and never served as anybody
//! else. No verifier keeps, logs or reports a token.

mod credentials;
mod digest;
mod header;
mod jwks;
mod jwt;
mod token_file;

pub use credentials::{bearer_token, AuthError, AuthFuture, Authenticate, TokenProblem};
pub use digest::TokenDigest;
pub use header::TrustedHeader;
pub use jwks::{JwksError, JwksSource};
pub use jwt::{JwtConfigError, JwtVerifier, WallClock, ASYMMETRIC_ALGORITHMS};
pub use token_file::{StaticTokens, TokenFileError};
