//! A static token file for small deployments: each line a bearer token
//! and the subject it stands for. Only SHA-256 digests of the tokens are
//! kept in memory, and a presented token is compared with every one of
//! them in constant time, so neither the time taken nor a memory dump
//! tells a token.

use std::path::{Path, PathBuf};

use http::HeaderMap;
use sha2::{Digest, Sha256};

use super::credentials::{
    bearer_token, is_token68, AuthError, AuthFuture, Authenticate, TokenProblem,
};
use crate::identity::Principal;

/// The shortest token accepted in the file (a guessable one is refused).
const MIN_TOKEN_CHARS: usize = 16;

/// A token file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenFileError {
    /// The file could not be read.
    #[error("reading the token file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What reading it said.
        #[source]
        source: std::io::Error,
    },
    /// A line that is not `TOKEN SUBJECT` (the line number; never its text,
    /// which may hold a token).
    #[error("line {0} of the token file is not `TOKEN SUBJECT` with a token of at least {MIN_TOKEN_CHARS} bearer-token characters")]
    BadLine(usize),
    /// The same token twice.
    #[error("line {0} of the token file repeats an earlier token")]
    Repeated(usize),
    /// No token at all.
    #[error("the token file holds no token")]
    Empty,
}

/// Tokens and their subjects; see the module documentation.
pub struct StaticTokens {
    entries: Vec<([u8; 32], String)>,
}

impl std::fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticTokens")
            .field("tokens", &self.entries.len())
            .finish()
    }
}

impl StaticTokens {
    /// Reads `path`: one `TOKEN SUBJECT` per line (the subject is the rest
    /// of the line), blank lines and `#` comments skipped.
    pub fn load(path: &Path) -> Result<Self, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        StaticTokens::parse(&text)
    }

    /// Parses the file's text; see [`StaticTokens::load`].
    pub fn parse(text: &str) -> Result<Self, TokenFileError> {
        let mut entries: Vec<([u8; 32], String)> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (token, subject) = line
                .split_once(char::is_whitespace)
                .map(|(t, s)| (t, s.trim()))
                .ok_or(TokenFileError::BadLine(number))?;
            if token.len() < MIN_TOKEN_CHARS || !is_token68(token) || subject.is_empty() {
                return Err(TokenFileError::BadLine(number));
            }
            let digest = digest_of(token);
            if entries.iter().any(|(known, _)| *known == digest) {
                return Err(TokenFileError::Repeated(number));
            }
            entries.push((digest, subject.to_owned()));
        }
        if entries.is_empty() {
            return Err(TokenFileError::Empty);
        }
        Ok(StaticTokens { entries })
    }

    /// The owner id of a subject of the file.
    pub fn owner_of(subject: &str) -> String {
        format!("token-file:{subject}")
    }

    /// The subject of `token`, looked up in time independent of where (or
    /// whether) it is found.
    fn subject_of(&self, token: &str) -> Option<&str> {
        let presented = digest_of(token);
        let mut found = None;
        for (digest, subject) in &self.entries {
            let difference = digest
                .iter()
                .zip(presented.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if std::hint::black_box(difference) == 0 {
                found = Some(subject.as_str());
            }
        }
        found
    }
}

fn digest_of(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Authenticate for StaticTokens {
    fn authenticate<'a>(&'a self, headers: &'a HeaderMap) -> AuthFuture<'a> {
        let principal = match bearer_token(headers) {
            Ok(Some(token)) => self
                .subject_of(token)
                .map(|subject| Some(Principal::new(StaticTokens::owner_of(subject))))
                .ok_or(AuthError::InvalidToken(TokenProblem::Unknown)),
            Ok(None) => Err(AuthError::Missing),
            Err(e) => Err(e),
        };
        Box::pin(std::future::ready(principal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_map_to_their_subjects_and_nothing_else() {
        let tokens = StaticTokens::parse(
            "# deployment tokens\n\nalice-0123456789abcdef alice\n  bob-0123456789abcdef   Bob Smith \n",
        )
        .unwrap();
        assert_eq!(tokens.subject_of("alice-0123456789abcdef"), Some("alice"));
        assert_eq!(tokens.subject_of("bob-0123456789abcdef"), Some("Bob Smith"));
        assert_eq!(tokens.subject_of("alice-0123456789abcdeg"), None);
        assert_eq!(tokens.subject_of(""), None);
        assert!(!format!("{tokens:?}").contains("alice-0123"));
    }

    #[test]
    fn a_bad_file_is_refused_naming_the_line_never_the_token() {
        for (text, line) in [
            ("short alice\n", 1),
            ("# c\nno-subject-0123456789abcdef\n", 2),
            ("has,comma-0123456789abcdef alice\n", 1),
        ] {
            let Err(error) = StaticTokens::parse(text) else {
                panic!("{text} was accepted");
            };
            assert!(
                matches!(error, TokenFileError::BadLine(n) if n == line),
                "{text}: {error}"
            );
            assert!(!error.to_string().contains("0123456789"));
        }
        assert!(matches!(
            StaticTokens::parse("same-0123456789abcdef a\nsame-0123456789abcdef b\n"),
            Err(TokenFileError::Repeated(2))
        ));
        assert!(matches!(
            StaticTokens::parse("# none\n"),
            Err(TokenFileError::Empty)
        ));
    }
}
