//! Feeds arbitrary text to every validator entry point. Any panic, stack overflow or timeout is a bug: the
//! validator must answer every input with a verdict.
#![no_main]

use libfuzzer_sys::fuzz_target;
use querygpt_sqlsafe::{Dialect, LintTarget, Policy, lint, validate, validate_redis};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let limited = Policy { allowed_tables: Some(vec!["orders".to_owned(), "public.customers".to_owned()]), row_limit: Some(100) };
    for dialect in Dialect::ALL {
        for policy in [&Policy::default(), &limited] {
            if let Ok(validated) = validate(input, dialect, policy) {
                // The text that runs must itself validate, to the same text.
                let again = validate(&validated.sql, dialect, policy).expect("rendered SQL must re-validate");
                assert_eq!(again.sql, validated.sql, "rendering is not a fixpoint");
            }
        }
    }
    if let Ok(commands) = validate_redis(input) {
        assert!(!commands.is_empty());
    }
    let _ = lint(input, LintTarget::Redis);
});
