//! An error with its causes, for logs and readiness: many errors say only what failed at their
//! own level ("db error", "error occurred while creating a new object") and keep why in their
//! source ("password authentication failed for user ...", "could not extend file: No space
//! left on device").

use std::error::Error;
use std::fmt;

/// Displays an error, then each cause whose text it does not already hold, joined by `: `.
pub struct Causes<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Causes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut written = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !text.is_empty() && !written.contains(&text) {
                written.push_str(": ");
                written.push_str(&text);
            }
            source = cause.source();
        }
        f.write_str(&written)
    }
}

/// `e` with its causes.
pub fn causes<'a>(e: &'a (dyn Error + 'static)) -> Causes<'a> {
    Causes(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("db error")
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn the_cause_follows_what_failed_once() {
        let e = Outer(std::io::Error::other("No space left on device"));
        assert_eq!(causes(&e).to_string(), "db error: No space left on device");
        let plain = std::io::Error::other("refused");
        assert_eq!(causes(&plain).to_string(), "refused");
    }
}
