//! The JWT verifier in process, against the harness's issuer: lifetimes
//! checked against an injected clock (no waiting), scopes, key rotation,
//! a key set that cannot be read.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use pmcp_tasks_mcp::{AuthError, JwksSource, JwtVerifier, TokenProblem};
use pmcp_tasks_tests::jwt::{now_s, Issuer};
use serde_json::json;

const ISSUER: &str = "https://issuer.test";
const RESOURCE: &str = "http://mcp.test/mcp";

/// A verifier of `issuer`'s tokens whose clock reads `now` (seconds).
fn verifier(issuer: &Issuer, now: Arc<AtomicI64>) -> JwtVerifier {
    JwtVerifier::new(JwksSource::File(issuer.jwks_path.clone()), ISSUER, RESOURCE)
        .with_leeway(Duration::from_secs(30))
        .with_key_refresh(Duration::ZERO, Duration::from_secs(3600))
        .with_clock(Arc::new(move || {
            UNIX_EPOCH + Duration::from_secs(now.load(Ordering::SeqCst) as u64)
        }))
}

#[tokio::test]
async fn lifetimes_are_checked_against_the_clock_with_the_leeway() {
    let issuer = Issuer::new(ISSUER);
    let start = now_s();
    let clock = Arc::new(AtomicI64::new(start));
    let verifier = verifier(&issuer, clock.clone());
    let mut claims = issuer.claims("alice", RESOURCE, 60);
    claims["nbf"] = json!(start + 100);
    let token = issuer.token(&claims);
    let problem = |r: Result<_, AuthError>| match r {
        Err(AuthError::InvalidToken(p)) => Some(p),
        Err(other) => panic!("{other}"),
        Ok(_) => None,
    };
    assert_eq!(
        problem(verifier.verify(&token).await),
        Some(TokenProblem::NotYetValid)
    );
    clock.store(start + 71, Ordering::SeqCst); // nbf - 29: within the leeway
    let principal = verifier.verify(&token).await.expect("within the leeway");
    assert_eq!(principal.owner(), JwtVerifier::owner_of(ISSUER, "alice"));
    clock.store(start + 89, Ordering::SeqCst); // exp + 29
    assert!(verifier.verify(&token).await.is_ok());
    clock.store(start + 91, Ordering::SeqCst); // exp + 31
    assert_eq!(
        problem(verifier.verify(&token).await),
        Some(TokenProblem::Expired)
    );
}

#[tokio::test]
async fn a_required_scope_missing_is_forbidden_not_unauthorized() {
    let issuer = Issuer::new(ISSUER);
    let verifier = verifier(&issuer, Arc::new(AtomicI64::new(now_s())))
        .with_required_scopes(vec!["tasks".into()]);
    let mut claims = issuer.claims("alice", RESOURCE, 60);
    let refused = verifier.verify(&issuer.token(&claims)).await.unwrap_err();
    assert_eq!(refused, AuthError::InsufficientScope("tasks".into()));
    assert_eq!(refused.status(), 403);
    claims["scope"] = json!("openid tasks");
    assert!(verifier.verify(&issuer.token(&claims)).await.is_ok());
}

#[tokio::test]
async fn a_rotated_key_is_fetched_and_an_unreadable_set_is_unavailable() {
    let mut issuer = Issuer::new(ISSUER);
    let clock = Arc::new(AtomicI64::new(now_s()));
    let verifier = verifier(&issuer, clock);
    let claims = issuer.claims("alice", RESOURCE, 60);
    assert!(verifier.verify(&issuer.token(&claims)).await.is_ok());
    issuer.rotate();
    assert!(verifier.verify(&issuer.token(&claims)).await.is_ok());

    let missing = JwtVerifier::new(
        JwksSource::File(std::env::temp_dir().join("pmcp-tasks-no-such-jwks.json")),
        ISSUER,
        RESOURCE,
    );
    assert!(missing.load_keys().await.is_err());
    let refused = missing.verify(&issuer.token(&claims)).await.unwrap_err();
    assert_eq!(refused, AuthError::KeysUnavailable);
    assert_eq!(refused.status(), 503);
}
