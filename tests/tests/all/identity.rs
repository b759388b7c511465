//! The JWT verifier in process, against the harness's issuer: lifetimes
//! checked against an injected clock (no waiting), the token type, scopes,
//! key rotation and removal (a file and a URL, aged by the same clock), a
//! key set that cannot be read.

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
        .with_clock(clock_of(now))
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

/// The reason a token is refused, `None` when accepted.
fn refusal(outcome: Result<pmcp_tasks_mcp::Principal, AuthError>) -> Option<AuthError> {
    outcome.err()
}

/// RFC 9068 section 4: only JWTs typed `at+jwt` are access tokens; an ID
/// token of the same issuer and audience (typed `JWT`) is refused, unless
/// the operator accepts untyped tokens for an authorization server that
/// does not type them (and then only `JWT` or no `typ`).
#[tokio::test]
async fn only_tokens_typed_as_access_tokens_are_accepted_by_default() {
    let issuer = Issuer::new(ISSUER);
    let clock = Arc::new(AtomicI64::new(now_s()));
    let strict = verifier(&issuer, clock.clone());
    let lenient = verifier(&issuer, clock).with_untyped_tokens(true);
    let claims = issuer.claims("alice", RESOURCE, 60);
    let not_access = Some(AuthError::InvalidToken(TokenProblem::NotAnAccessToken));
    for typ in ["at+jwt", "application/at+jwt"] {
        let token = issuer.token_typed(&claims, Some(typ));
        assert_eq!(refusal(strict.verify(&token).await), None, "{typ}");
        assert_eq!(refusal(lenient.verify(&token).await), None, "{typ}");
    }
    for typ in [Some("JWT"), None] {
        let token = issuer.token_typed(&claims, typ);
        assert_eq!(refusal(strict.verify(&token).await), not_access, "{typ:?}");
        assert_eq!(refusal(lenient.verify(&token).await), None, "{typ:?}");
    }
    let token = issuer.token_typed(&claims, Some("JOSE"));
    assert_eq!(refusal(strict.verify(&token).await), not_access);
    assert_eq!(refusal(lenient.verify(&token).await), not_access);
}

/// A key removed from a JWKS file stops verifying within a second of the
/// injected clock (the file is checked for a change every second), while
/// the issuer's current key goes on verifying; an unchanged file is not
/// read again.
#[tokio::test]
async fn a_key_removed_from_the_file_is_refused_within_a_second() {
    let mut issuer = Issuer::new(ISSUER);
    let start = now_s();
    let clock = Arc::new(AtomicI64::new(start));
    // The floor between reads for unknown keys is an hour: only the file
    // check can notice the removal.
    let verifier = verifier(&issuer, clock.clone())
        .with_key_refresh(Duration::from_secs(3600), Duration::from_secs(3600));
    verifier.load_keys().await.expect("the key set");
    let claims = issuer.claims("alice", RESOURCE, 600);
    let old = issuer.token(&claims);
    assert_eq!(refusal(verifier.verify(&old).await), None);
    issuer.rotate();
    issuer.retire_old_keys();
    let new = issuer.token(&claims);
    clock.store(start + 2, Ordering::SeqCst);
    assert_eq!(
        refusal(verifier.verify(&old).await),
        Some(AuthError::InvalidToken(TokenProblem::UnknownKey)),
        "the removed key still verifies"
    );
    assert_eq!(refusal(verifier.verify(&new).await), None);
}

/// A key set URL's keys live as long as its `Cache-Control: max-age` says,
/// within the operator's ceiling: a key the issuer removed is refused once
/// that lifetime has passed on the injected clock, and not fetched before.
#[tokio::test]
async fn a_key_removed_from_the_url_is_refused_once_its_cache_lifetime_passes() {
    use pmcp_tasks_tests::jwt::JwksServer;
    let mut issuer = Issuer::new(ISSUER);
    let served = JwksServer::start(&issuer, "public, max-age=60").await;
    let start = now_s();
    let clock = Arc::new(AtomicI64::new(start));
    let at = |s: i64| clock.store(start + s, Ordering::SeqCst);
    let source = JwksSource::parse(&served.url).expect("a loopback URL");
    let verifier = JwtVerifier::new(source, ISSUER, RESOURCE)
        .with_key_refresh(Duration::from_secs(10), Duration::from_secs(300))
        .with_clock(clock_of(clock.clone()));
    verifier.load_keys().await.expect("the key set");
    let claims = issuer.claims("alice", RESOURCE, 3600);
    let old = issuer.token(&claims);
    assert_eq!(refusal(verifier.verify(&old).await), None);
    issuer.rotate();
    issuer.retire_old_keys();
    at(59);
    assert_eq!(refusal(verifier.verify(&old).await), None, "within max-age");
    assert_eq!(
        served.fetches.load(Ordering::SeqCst),
        1,
        "served from cache"
    );
    at(61);
    assert_eq!(
        refusal(verifier.verify(&old).await),
        Some(AuthError::InvalidToken(TokenProblem::UnknownKey)),
        "past max-age"
    );
    assert_eq!(served.fetches.load(Ordering::SeqCst), 2);

    // A lifetime longer than the ceiling is cut to it (300 s).
    *served.cache_control.lock().unwrap() = "max-age=86400".to_owned();
    let renewed = issuer.token(&claims);
    at(122);
    assert_eq!(refusal(verifier.verify(&renewed).await), None);
    let fetched = served.fetches.load(Ordering::SeqCst);
    issuer.rotate();
    issuer.retire_old_keys();
    at(122 + 299);
    assert_eq!(
        refusal(verifier.verify(&renewed).await),
        None,
        "within the ceiling"
    );
    assert_eq!(served.fetches.load(Ordering::SeqCst), fetched);
    at(122 + 301);
    assert_eq!(
        refusal(verifier.verify(&renewed).await),
        Some(AuthError::InvalidToken(TokenProblem::UnknownKey)),
        "past the ceiling"
    );
}

/// A clock reading `now` (seconds since the epoch).
fn clock_of(now: Arc<AtomicI64>) -> pmcp_tasks_mcp::WallClock {
    Arc::new(move || UNIX_EPOCH + Duration::from_secs(now.load(Ordering::SeqCst) as u64))
}
