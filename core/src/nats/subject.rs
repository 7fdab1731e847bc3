//! Subject and queue group validation, and wildcard matching.
//!
//! Checked before anything is written, so a bad subject is a typed error for
//! the caller instead of a `-ERR` (or a silently dead subscription) later.

use super::error::SubjectError;

/// True for bytes NATS does not allow in subjects and queue names.
fn is_forbidden(b: u8) -> bool {
    b == b' ' || b == b'\t' || b == b'\r' || b == b'\n' || b < 0x20 || b == 0x7f
}

/// Checks a subject for publishing: non-empty tokens, no whitespace, no
/// wildcards (`*` or `>` as whole tokens).
///
/// ```
/// use courier_core::nats::subject::validate_publish;
/// assert!(validate_publish("telemetry.room1.temp").is_ok());
/// assert!(validate_publish("telemetry.*").is_err());
/// ```
pub fn validate_publish(subject: &str) -> Result<(), SubjectError> {
    validate(subject, false)
}

/// Checks a subject for subscribing: like [`validate_publish`] but `*`
/// may stand for any one token and a final `>` for one or more tokens.
///
/// ```
/// use courier_core::nats::subject::validate_subscribe;
/// assert!(validate_subscribe("telemetry.*.temp").is_ok());
/// assert!(validate_subscribe("telemetry.>").is_ok());
/// assert!(validate_subscribe("telemetry.>.temp").is_err());
/// ```
pub fn validate_subscribe(subject: &str) -> Result<(), SubjectError> {
    validate(subject, true)
}

fn validate(subject: &str, wildcards_allowed: bool) -> Result<(), SubjectError> {
    if subject.is_empty() {
        return Err(SubjectError::Empty);
    }
    if subject.bytes().any(is_forbidden) {
        return Err(SubjectError::Whitespace);
    }
    let mut tokens = subject.split('.').peekable();
    while let Some(token) = tokens.next() {
        if token.is_empty() {
            return Err(SubjectError::EmptyToken);
        }
        let is_last = tokens.peek().is_none();
        match token {
            "*" | ">" if !wildcards_allowed => return Err(SubjectError::WildcardInPublish),
            ">" if !is_last => return Err(SubjectError::FullWildcardNotLast),
            "*" | ">" => {}
            // nats-server treats `a*` as a literal token; we reject it in
            // subscriptions because it is almost always a typo for `a.*`.
            t if wildcards_allowed && (t.contains('*') || t.contains('>')) => {
                return Err(SubjectError::PartialWildcard)
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks a queue group name: non-empty, no whitespace, no wildcards.
pub fn validate_queue_group(queue: &str) -> Result<(), SubjectError> {
    if queue.is_empty()
        || queue.bytes().any(is_forbidden)
        || queue.contains('*')
        || queue.contains('>')
    {
        return Err(SubjectError::InvalidQueueGroup);
    }
    Ok(())
}

/// True when `subject` (a concrete subject) matches `pattern` (which may
/// contain `*` and a final `>`). Neither is validated here.
///
/// ```
/// use courier_core::nats::subject::matches;
/// assert!(matches("a.*.c", "a.b.c"));
/// assert!(matches("a.>", "a.b.c"));
/// assert!(!matches("a.>", "a"));
/// assert!(!matches("a.*", "a.b.c"));
/// ```
pub fn matches(pattern: &str, subject: &str) -> bool {
    let mut pattern_tokens = pattern.split('.');
    let mut subject_tokens = subject.split('.');
    loop {
        match (pattern_tokens.next(), subject_tokens.next()) {
            (None, None) => return true,
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(p), Some(s)) if p == s => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn publish_subjects() {
        assert_eq!(validate_publish("a"), Ok(()));
        assert_eq!(validate_publish("a.b.c"), Ok(()));
        assert_eq!(validate_publish("_INBOX.x1.42"), Ok(()));
        assert_eq!(validate_publish("$JS.API.INFO"), Ok(()));
        assert_eq!(validate_publish(""), Err(SubjectError::Empty));
        assert_eq!(validate_publish(".a"), Err(SubjectError::EmptyToken));
        assert_eq!(validate_publish("a."), Err(SubjectError::EmptyToken));
        assert_eq!(validate_publish("a..b"), Err(SubjectError::EmptyToken));
        assert_eq!(validate_publish("a b"), Err(SubjectError::Whitespace));
        assert_eq!(validate_publish("a\tb"), Err(SubjectError::Whitespace));
        assert_eq!(validate_publish("a\r\nb"), Err(SubjectError::Whitespace));
        assert_eq!(
            validate_publish("a.*"),
            Err(SubjectError::WildcardInPublish)
        );
        assert_eq!(validate_publish(">"), Err(SubjectError::WildcardInPublish));
        // Not wildcards when not whole tokens: nats-server delivers these literally.
        assert_eq!(validate_publish("a.b*"), Ok(()));
    }

    #[test]
    fn subscribe_subjects() {
        assert_eq!(validate_subscribe("a.*.c"), Ok(()));
        assert_eq!(validate_subscribe("*"), Ok(()));
        assert_eq!(validate_subscribe(">"), Ok(()));
        assert_eq!(validate_subscribe("a.>"), Ok(()));
        assert_eq!(validate_subscribe("*.*.>"), Ok(()));
        assert_eq!(
            validate_subscribe("a.>.c"),
            Err(SubjectError::FullWildcardNotLast)
        );
        assert_eq!(
            validate_subscribe("a.b*"),
            Err(SubjectError::PartialWildcard)
        );
        assert_eq!(
            validate_subscribe("a.>b"),
            Err(SubjectError::PartialWildcard)
        );
        assert_eq!(validate_subscribe("a..*"), Err(SubjectError::EmptyToken));
        assert_eq!(validate_subscribe("a *"), Err(SubjectError::Whitespace));
    }

    #[test]
    fn queue_groups() {
        assert_eq!(validate_queue_group("workers"), Ok(()));
        assert_eq!(validate_queue_group("workers.eu"), Ok(()));
        for bad in ["", "a b", "q*", "q>", "a\n"] {
            assert_eq!(
                validate_queue_group(bad),
                Err(SubjectError::InvalidQueueGroup),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn wildcard_matching() {
        assert!(matches("a.b.c", "a.b.c"));
        assert!(!matches("a.b.c", "a.b"));
        assert!(!matches("a.b", "a.b.c"));
        assert!(matches("*", "a"));
        assert!(!matches("*", "a.b"));
        assert!(matches(">", "a"));
        assert!(matches(">", "a.b.c"));
        assert!(matches("a.*.c", "a.x.c"));
        assert!(!matches("a.*.c", "a.x.d"));
        assert!(matches("a.*.>", "a.x.y.z"));
        assert!(!matches("a.*.>", "a.x"));
        assert!(matches("_INBOX.abc.*", "_INBOX.abc.17"));
    }

    proptest! {
        #[test]
        fn validation_never_panics(s in "\\PC{0,40}") {
            let _ = validate_publish(&s);
            let _ = validate_subscribe(&s);
            let _ = validate_queue_group(&s);
            let _ = matches(&s, &s);
        }

        #[test]
        fn valid_publish_subject_matches_itself_and_full_wildcard(
            tokens in proptest::collection::vec("[a-z0-9_$-]{1,6}", 1..5)
        ) {
            let subject = tokens.join(".");
            prop_assert!(validate_publish(&subject).is_ok());
            prop_assert!(matches(&subject, &subject));
            prop_assert!(matches(">", &subject));
            let stars = tokens.iter().map(|_| "*").collect::<std::vec::Vec<_>>().join(".");
            prop_assert!(validate_subscribe(&stars).is_ok());
            prop_assert!(matches(&stars, &subject));
        }
    }
}
