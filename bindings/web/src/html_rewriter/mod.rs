//! Workers' `HTMLRewriter`, on Cloudflare's own lol_html.
//!
//! The script builds the rewriter (`on`, `onDocument`) and drives it from the body stream of the
//! response it transforms: each chunk goes to [`op_edge_html_write`], and whenever lol_html
//! reaches a handler the op answers with the handler to call; the script calls it (awaiting it
//! if it is async), its token's methods go through [`op_edge_html_call`], and
//! [`op_edge_html_return`] lets the rewriter go on. How lol_html is suspended inside a handler
//! is in [`session`].
//!
//! Bounded per isolate: at most [`MAX_OPEN`] rewriters at once, [`session::MAX_BUFFERED`] bytes
//! buffered by each and [`session::MAX_PENDING`] bytes of inserted content not yet written out,
//! [`MAX_SELECTORS`] handlers of at most [`MAX_SELECTOR_LEN`] bytes ([`MAX_SELECTOR_BYTES`] in
//! all), selectors of a bounded depth (`selector_bounds`).

mod selector_bounds;
mod session;
mod tokens;

use std::borrow::Cow;
use std::cell::{Cell, RefCell};

use deno_core::{OpState, Resource, ResourceId, ToJsBuffer, op2};
use deno_error::JsErrorBox;
use lol_html::{AsciiCompatibleEncoding, Selector};

use session::{Plan, STALE, Session, Step};
use tokens::{Answer, Call};

/// The most rewriters one isolate may have running at once.
pub const MAX_OPEN: usize = 64;
/// The most `on`/`onDocument` calls one rewriter may have.
pub const MAX_SELECTORS: usize = 1_024;
/// The longest selector accepted, in bytes.
pub const MAX_SELECTOR_LEN: usize = 4_096;
/// The most selector bytes one rewriter may have in all (lol_html builds a matching program
/// from them for each transform, outside the JavaScript heap).
pub const MAX_SELECTOR_BYTES: usize = 64 * 1024;

struct RewriterResource {
    session: RefCell<Session>,
    /// Counts handler calls, so a token kept past its handler is refused.
    epoch: Cell<u32>,
}

impl Resource for RewriterResource {
    fn name(&self) -> Cow<'_, str> {
        "edgeHtmlRewriter".into()
    }
}

/// How many rewriters the isolate has open.
#[derive(Default)]
struct OpenRewriters(usize);

fn parse_selector(selector: &str) -> Result<Selector, JsErrorBox> {
    if selector.len() > MAX_SELECTOR_LEN {
        return Err(JsErrorBox::type_error(format!(
            "Parser error: the selector is longer than {MAX_SELECTOR_LEN} bytes"
        )));
    }
    selector_bounds::check(selector)
        .map_err(|why| JsErrorBox::type_error(format!("Parser error: {why}")))?;
    selector
        .parse()
        .map_err(|e| JsErrorBox::type_error(format!("Parser error: {e}")))
}

/// Checks a selector given to `HTMLRewriter.on` (so a bad one throws there, as on Workers).
#[op2(fast)]
pub fn op_edge_html_selector(#[string] selector: &str) -> Result<(), JsErrorBox> {
    parse_selector(selector).map(drop)
}

/// The character encoding a `Content-Type` names, when lol_html can rewrite it (UTF-8 if none).
fn encoding(content_type: &str) -> AsciiCompatibleEncoding {
    let lower = content_type.to_ascii_lowercase();
    lower
        .split(';')
        .skip(1)
        .filter_map(|param| param.trim().strip_prefix("charset="))
        .find_map(|label| {
            let label = label.trim().trim_matches('"');
            encoding_rs::Encoding::for_label(label.as_bytes())
        })
        .and_then(AsciiCompatibleEncoding::new)
        .unwrap_or_else(AsciiCompatibleEncoding::utf_8)
}

/// Starts a rewriter: `elements` are the `on` calls (selector and handler bits), `documents` the
/// `onDocument` calls, `content_type` the response's (for its charset).
#[op2]
#[smi]
pub fn op_edge_html_new(
    state: &mut OpState,
    #[serde] elements: Vec<(String, u8)>,
    #[serde] documents: Vec<u8>,
    #[string] content_type: &str,
) -> Result<ResourceId, JsErrorBox> {
    if elements.len() + documents.len() > MAX_SELECTORS {
        return Err(JsErrorBox::type_error(format!(
            "an HTMLRewriter may have at most {MAX_SELECTORS} handlers"
        )));
    }
    if elements.iter().map(|(s, _)| s.len()).sum::<usize>() > MAX_SELECTOR_BYTES {
        return Err(JsErrorBox::type_error(format!(
            "an HTMLRewriter's selectors may total at most {MAX_SELECTOR_BYTES} bytes"
        )));
    }
    let open = state.try_borrow::<OpenRewriters>().map_or(0, |o| o.0);
    if open >= MAX_OPEN {
        return Err(JsErrorBox::type_error(format!(
            "too many HTMLRewriter transforms running at once (at most {MAX_OPEN}): read or \
             cancel the bodies of the others"
        )));
    }
    let elements = elements
        .into_iter()
        .map(|(selector, handlers)| Ok((parse_selector(&selector)?, handlers)))
        .collect::<Result<_, JsErrorBox>>()?;
    let plan = Plan {
        elements,
        documents,
        encoding: encoding(content_type),
    };
    let session = Session::new(plan).map_err(JsErrorBox::type_error)?;
    if !state.has::<OpenRewriters>() {
        state.put(OpenRewriters::default());
    }
    state.borrow_mut::<OpenRewriters>().0 += 1;
    Ok(state.resource_table.add(RewriterResource {
        session: RefCell::new(session),
        epoch: Cell::new(0),
    }))
}

/// A step's result for the script: the output so far, the handler to call (`[kind, index,
/// epoch]`) if any, and whether the document is done.
type StepOut = (Option<ToJsBuffer>, Option<(u8, u32, u32)>, bool);

fn rewriter(state: &OpState, rid: ResourceId) -> Result<std::rc::Rc<RewriterResource>, JsErrorBox> {
    state
        .resource_table
        .get::<RewriterResource>(rid)
        .map_err(|_| JsErrorBox::type_error("the HTMLRewriter has finished"))
}

fn step_out(
    state: &mut OpState,
    rid: ResourceId,
    step: impl FnOnce(&mut Session) -> Result<Step, String>,
) -> Result<StepOut, JsErrorBox> {
    let resource = rewriter(state, rid)?;
    let result = step(&mut resource.session.borrow_mut());
    let step = match result {
        Ok(step) => step,
        Err(message) => {
            close(state, rid);
            return Err(JsErrorBox::type_error(message));
        }
    };
    let event = step.event.map(|event| {
        let epoch = resource.epoch.get().wrapping_add(1);
        resource.epoch.set(epoch);
        (event.kind as u8, event.index, epoch)
    });
    if step.done {
        close(state, rid);
    }
    let output = (!step.output.is_empty()).then(|| step.output.into());
    Ok((output, event, step.done))
}

/// Gives rewriter `rid` the next chunk of the document.
#[op2]
#[serde]
pub fn op_edge_html_write(
    state: &mut OpState,
    #[smi] rid: ResourceId,
    #[buffer] chunk: &[u8],
) -> Result<StepOut, JsErrorBox> {
    let chunk = chunk.to_vec();
    step_out(state, rid, |session| session.push(Some(chunk)))
}

/// Tells rewriter `rid` the document has ended.
#[op2]
#[serde]
pub fn op_edge_html_end(
    state: &mut OpState,
    #[smi] rid: ResourceId,
) -> Result<StepOut, JsErrorBox> {
    step_out(state, rid, |session| session.push(None))
}

/// Rewriter `rid`'s running handler is done: go on.
#[op2]
#[serde]
pub fn op_edge_html_return(
    state: &mut OpState,
    #[smi] rid: ResourceId,
) -> Result<StepOut, JsErrorBox> {
    step_out(state, rid, Session::finish_handler)
}

/// Applies a token method (`op`, one of the codes in `tokens::op`) to the token of rewriter
/// `rid`'s running handler; `epoch` is the handler call the token was made for.
#[op2]
#[serde]
#[allow(clippy::too_many_arguments)]
pub fn op_edge_html_call(
    state: &mut OpState,
    #[smi] rid: ResourceId,
    #[smi] epoch: u32,
    #[smi] op: u32,
    #[string] a: String,
    #[string] b: String,
    html: bool,
    #[smi] n: u32,
) -> Result<Answer, JsErrorBox> {
    let resource = rewriter(state, rid).map_err(|_| JsErrorBox::type_error(STALE))?;
    if resource.epoch.get() != epoch {
        return Err(JsErrorBox::type_error(STALE));
    }
    let op = u8::try_from(op).map_err(|_| JsErrorBox::type_error("no such token operation"))?;
    let call = Call { op, a, b, html, n };
    let answer = resource.session.borrow_mut().call(call);
    answer.map_err(JsErrorBox::type_error)
}

/// Drops rewriter `rid` (its body was cancelled, a handler threw, or it was collected).
#[op2(fast)]
pub fn op_edge_html_close(state: &mut OpState, #[smi] rid: ResourceId) {
    close(state, rid);
}

fn close(state: &mut OpState, rid: ResourceId) {
    if state.resource_table.take::<RewriterResource>(rid).is_ok()
        && let Some(open) = state.try_borrow_mut::<OpenRewriters>()
    {
        open.0 = open.0.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_charset_of_a_content_type_is_used_when_lol_html_can_rewrite_it() {
        let name = |content_type| <&encoding_rs::Encoding>::from(encoding(content_type)).name();
        assert_eq!(name("text/html"), "UTF-8");
        assert_eq!(name("text/html; charset=ISO-8859-1"), "windows-1252");
        assert_eq!(name("text/html;Charset=\"shift_jis\""), "Shift_JIS");
        // UTF-16 is not ASCII-compatible: lol_html cannot parse it, UTF-8 is assumed.
        assert_eq!(name("text/html; charset=utf-16le"), "UTF-8");
        assert_eq!(name("text/html; charset=nonsense"), "UTF-8");
    }
}
