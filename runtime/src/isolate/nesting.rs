//! How deeply a module's syntax may nest before edge hands it to swc's transforms. swc's
//! parser grows its stack as it goes, but its transforms, code generator and the dropping of
//! the tree recurse on the thread's stack: a hostile module of nested parentheses or a long
//! `1+1+…` chain (100,000 levels overflowed 256 MiB in a debug build) would abort the whole
//! node. So a parsed module deeper than [`MAX_NESTING`] is refused (or left alone) before any
//! of that runs, and its tree is dropped on a stack grown for it.

use deno_ast::swc::ast::{Expr, Pat, Program, Stmt, TsType};
use deno_ast::swc::ecma_visit::{Visit, VisitWith};
use deno_ast::swc::lexer::token::Token;
use deno_ast::{MediaType, ParsedSource, TokenOrComment};

/// The deepest nesting of expressions, statements, patterns and types edge transforms; far
/// beyond what people or bundlers write.
pub(crate) const MAX_NESTING: usize = 1_000;

/// The most tokens one expression may run to between a `,`, `;`, `{` or `}`: the parser
/// recurses on chains of prefix and right-associative operators (`!!!x`, `a = b = c`, `x =>
/// y => z`) as it does on brackets.
const MAX_RUN: usize = 3_000;

/// Whether `text` nests too deep to parse safely, read from its tokens before it is parsed:
/// brackets deeper than [`MAX_NESTING`], or an expression of more than [`MAX_RUN`] tokens (the
/// parser recurses on both faster than its stack grows).
pub(crate) fn too_deep_to_parse(text: &str, media_type: MediaType) -> bool {
    let mut depth = 0usize;
    let mut run = 0usize;
    for item in deno_ast::lex(text, media_type) {
        let TokenOrComment::Token(token) = item.inner else {
            continue;
        };
        run += 1;
        match token {
            Token::LParen | Token::LBracket | Token::DollarLBrace => depth += 1,
            Token::LBrace => {
                depth += 1;
                run = 0;
            }
            Token::RParen | Token::RBracket => depth = depth.saturating_sub(1),
            Token::RBrace => {
                depth = depth.saturating_sub(1);
                run = 0;
            }
            Token::Comma | Token::Semi => run = 0,
            _ => {}
        }
        if depth > MAX_NESTING || run > MAX_RUN {
            return true;
        }
    }
    false
}

/// Whether `program` nests deeper than [`MAX_NESTING`]. The walk stops there, so it never
/// recurses deeper itself.
pub(crate) fn too_deep(program: &Program) -> bool {
    let mut meter = Meter::default();
    program.visit_with(&mut meter);
    meter.over
}

/// Drops a parsed module that may be too deep to drop on this thread's stack.
pub(crate) fn dispose(parsed: ParsedSource, text_len: usize) {
    // Each level of the tree takes at least two bytes of source.
    let stack = text_len.saturating_mul(256).saturating_add(1 << 20);
    stacker::grow(stack, move || drop(parsed));
}

#[derive(Default)]
struct Meter {
    depth: usize,
    over: bool,
}

impl Meter {
    fn enter(&mut self, children: impl FnOnce(&mut Self)) {
        if self.over {
            return;
        }
        self.depth += 1;
        if self.depth > MAX_NESTING {
            self.over = true;
        } else {
            children(self);
        }
        self.depth -= 1;
    }
}

impl Visit for Meter {
    fn visit_expr(&mut self, n: &Expr) {
        self.enter(|m| n.visit_children_with(m));
    }
    fn visit_stmt(&mut self, n: &Stmt) {
        self.enter(|m| n.visit_children_with(m));
    }
    fn visit_pat(&mut self, n: &Pat) {
        self.enter(|m| n.visit_children_with(m));
    }
    fn visit_ts_type(&mut self, n: &TsType) {
        self.enter(|m| n.visit_children_with(m));
    }
}
