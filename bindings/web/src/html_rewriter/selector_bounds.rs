//! How deep a selector may be before lol_html sees it.
//!
//! lol_html compiles a selector recursively, one level per combinator (`a b > c`), on the
//! rewriter's own stack, and the CSS parser nests a level per parenthesis (`:not(…)`): a long
//! enough selector would overflow a stack, which takes the whole process down. So a selector's
//! shape is bounded before it is parsed: at most [`MAX_COMBINATORS`] combinators in each of its
//! comma-separated alternatives and [`MAX_NESTING`] levels of parentheses. Real selectors use a
//! handful of each.

/// The most combinators (descendant, `>`, `+`, `~`) in one alternative of a selector.
pub(crate) const MAX_COMBINATORS: usize = 32;
/// The deepest nesting of parentheses.
pub(crate) const MAX_NESTING: usize = 8;

/// Says why `selector` is too deep, if it is. Quoted strings and attribute brackets are not
/// looked into (`[title="a > b"]` has no combinator).
pub(crate) fn check(selector: &str) -> Result<(), String> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut brackets = 0usize;
    let mut parens = 0usize;
    // Per alternative: combinators so far; whether the last thing seen was a compound
    // selector's text (so a following combinator joins two of them).
    let mut combinators = 0usize;
    let mut after_compound = false;
    let mut pending_combinator = false;
    for c in selector.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            continue;
        }
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '[' => brackets += 1,
            ']' => brackets = brackets.saturating_sub(1),
            _ if brackets > 0 => {}
            '(' => {
                parens += 1;
                if parens > MAX_NESTING {
                    return Err(format!(
                        "the selector nests parentheses more than {MAX_NESTING} deep"
                    ));
                }
                after_compound = false;
                pending_combinator = false;
            }
            ')' => {
                parens = parens.saturating_sub(1);
                after_compound = true;
                pending_combinator = false;
            }
            ',' => {
                combinators = 0;
                after_compound = false;
                pending_combinator = false;
            }
            ' ' | '\t' | '\n' | '\r' | '\x0c' | '>' | '+' | '~' => {
                pending_combinator |= after_compound;
            }
            _ => {
                if pending_combinator {
                    combinators += 1;
                    if combinators > MAX_COMBINATORS {
                        return Err(format!(
                            "the selector has more than {MAX_COMBINATORS} combinators"
                        ));
                    }
                    pending_combinator = false;
                }
                after_compound = true;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_selectors_pass_and_deep_ones_do_not() {
        for ok in [
            "a[href]",
            "div.ad > p + span ~ em",
            "body   main  article > p:nth-child(2n+1)",
            "a[title=\"a > b c d e\"]",
            "p:not(.x)",
            "a, b, c, d",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        let deep = format!("a{}", " a".repeat(MAX_COMBINATORS));
        assert_eq!(check(&deep), Ok(()));
        let deeper = format!("a{}", " a".repeat(MAX_COMBINATORS + 1));
        assert!(check(&deeper).is_err());
        let child = format!("a{}", ">a".repeat(MAX_COMBINATORS + 1));
        assert!(check(&child).is_err());
        // Alternatives are counted apart.
        let many = [deep.as_str(); 4].join(", ");
        assert_eq!(check(&many), Ok(()));
        let nested = format!(
            "{}p{}",
            ":not(".repeat(MAX_NESTING + 1),
            ")".repeat(MAX_NESTING + 1)
        );
        assert!(check(&nested).is_err());
    }
}
