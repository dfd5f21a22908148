//! One `HTMLRewriter.transform()`: lol_html running on a stack of its own on the isolate's thread.
//!
//! lol_html calls its content handlers synchronously, from inside `write`, with a borrowed
//! token (`&mut Element`, …) that is only valid during the call; a Worker's handlers are
//! JavaScript, may be `async`, and must run on the isolate's own stack. So the rewriter runs in
//! a coroutine (corosensei): when lol_html reaches a handler, the coroutine suspends with an
//! [`Out::Event`]; the script's handler runs, and each thing it does to the token (read an
//! attribute, append content, …) resumes the coroutine with an [`In::Call`] that is applied to
//! the still-borrowed token and answered; [`In::Return`] lets lol_html go on. Everything runs on
//! the isolate's thread, inside its ops, so the isolate's CPU clock pays for the parsing too.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use lol_html::html_content::{Comment, Doctype, DocumentEnd, Element, EndTag, TextChunk};
use lol_html::{
    AsciiCompatibleEncoding, DocumentContentHandlers, ElementContentHandlers, HandlerResult,
    HtmlRewriter, MemorySettings, Selector, Settings,
};

use super::tokens::{Answer, Call, Token};

/// The stack each rewriter runs on (reserved address space; pages are committed as used).
const STACK_BYTES: usize = 1 << 20;

/// The most memory lol_html may buffer for one rewriter (a tag split across many chunks, say).
pub(crate) const MAX_BUFFERED: usize = 4 << 20;

/// The most content handlers may have inserted (strings given to token methods) beyond what
/// the rewriter has written out: lol_html holds inserted content until the token it belongs to
/// is written (an element's `append` until its end tag), outside the JavaScript heap.
pub(crate) const MAX_PENDING: u64 = 32 << 20;

/// Which handlers a selector (or the document) has, as bits.
pub(crate) mod has {
    /// `element(el)` (for `onDocument`: `doctype(doctype)`).
    pub const FIRST: u8 = 1;
    /// `comments(comment)`.
    pub const COMMENTS: u8 = 2;
    /// `text(chunk)`.
    pub const TEXT: u8 = 4;
    /// `end(end)` (document handlers only).
    pub const END: u8 = 8;
}

/// What a handler event is about; with the index of the `on`/`onDocument` call (or of the end
/// tag handler) it tells the script which of its functions to call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Element = 0,
    Comment = 1,
    Text = 2,
    Doctype = 3,
    DocComment = 4,
    DocText = 5,
    DocEnd = 6,
    EndTag = 7,
}

/// A handler to call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Event {
    pub kind: Kind,
    pub index: u32,
}

/// What the script sends the rewriter.
pub(crate) enum In {
    /// More of the document.
    Write(Vec<u8>),
    /// The end of the document.
    End,
    /// Something done to the token of the handler now running.
    Call(Call),
    /// The handler now running is done.
    Return,
}

/// What the rewriter answers.
pub(crate) enum Out {
    /// It has used all it was given.
    NeedInput,
    /// A handler is to run.
    Event(Event),
    /// The result of an [`In::Call`].
    Answer(Result<Answer, String>),
}

/// The rewriter's way to suspend itself from inside any handler, including end tag handlers,
/// which lol_html requires to be `'static` (so they cannot borrow the [`Yielder`]).
#[derive(Clone, Default)]
pub(crate) struct Suspender(Rc<Cell<Option<*const Yielder<In, Out>>>>);

impl Suspender {
    #[expect(
        unsafe_code,
        reason = "the yielder lives on the coroutine's stack for as long as its body runs, \
                  and handlers are only ever called from inside that body (they are owned by \
                  the rewriter, which the body owns); the pointer is cleared when the body ends"
    )]
    fn suspend(&self, out: Out) -> In {
        match self.0.get() {
            // SAFETY: see the reason above: a handler runs only while the body (and so the
            // yielder) is alive, and on the coroutine's own stack.
            Some(yielder) => unsafe { (*yielder).suspend(out) },
            None => In::Return,
        }
    }
}

/// Runs one handler: tells the script, applies its calls to `token`, returns when it is done.
fn serve<T: Token>(suspender: &Suspender, event: Event, token: &mut T) -> HandlerResult {
    let mut input = suspender.suspend(Out::Event(event));
    loop {
        match input {
            In::Call(call) => {
                let answer = token.call(call, suspender);
                input = suspender.suspend(Out::Answer(answer));
            }
            In::Return => return Ok(()),
            In::Write(_) | In::End => {
                return Err("the document was written to while one of its handlers ran".into());
            }
        }
    }
}

/// Makes the script's end tag handler `id` the one of `element` (a later `onEndTag` replaces an
/// earlier one, as on Workers).
pub(crate) fn on_end_tag(
    element: &mut Element<'_, '_>,
    suspender: &Suspender,
    id: u32,
) -> Result<(), String> {
    let suspender = suspender.clone();
    let handlers = element
        .end_tag_handlers()
        .ok_or_else(|| "Parser error: No end tag.".to_owned())?;
    handlers.clear();
    handlers.push(Box::new(move |end: &mut EndTag<'_>| {
        serve(
            &suspender,
            Event {
                kind: Kind::EndTag,
                index: id,
            },
            end,
        )
    }));
    Ok(())
}

/// What the rewriter is to do: the script's `on(selector, …)` and `onDocument(…)` calls.
pub(crate) struct Plan {
    /// Each `on` call: its selector and which handlers it has ([`has`]).
    pub elements: Vec<(Selector, u8)>,
    /// Each `onDocument` call: which handlers it has.
    pub documents: Vec<u8>,
    /// The document's character encoding.
    pub encoding: AsciiCompatibleEncoding,
}

type Body = Coroutine<In, Out, Result<(), String>, DefaultStack>;

/// A rewriter in progress.
pub(crate) struct Session {
    coroutine: Option<Body>,
    output: Rc<RefCell<Vec<u8>>>,
    /// Whether a handler is running (calls are allowed) or input is awaited.
    in_handler: bool,
    /// Bytes handlers have given to token methods, and bytes written out, in all: their
    /// difference bounds what lol_html holds for the script ([`MAX_PENDING`]).
    inserted: u64,
    emitted: u64,
}

/// What one step of the rewriter gave: the output made so far, and either a handler to run or
/// `None` (it wants more input, or it has finished when `done`).
pub(crate) struct Step {
    pub output: Vec<u8>,
    pub event: Option<Event>,
    pub done: bool,
}

impl Session {
    /// Makes a rewriter for `plan`; it starts when first given input.
    pub(crate) fn new(plan: Plan) -> Result<Self, String> {
        let stack = DefaultStack::new(STACK_BYTES)
            .map_err(|e| format!("could not reserve the HTMLRewriter's stack: {e}"))?;
        let output = Rc::new(RefCell::new(Vec::new()));
        let sink = output.clone();
        let coroutine = Coroutine::with_stack(stack, move |yielder: &Yielder<In, Out>, first| {
            let suspender = Suspender::default();
            suspender.0.set(Some(yielder as *const _));
            let result = run(plan, &suspender, sink, first);
            suspender.0.set(None);
            result
        });
        Ok(Self {
            coroutine: Some(coroutine),
            output,
            in_handler: false,
            inserted: 0,
            emitted: 0,
        })
    }

    /// Gives the rewriter more of the document (`None`: the end of it).
    pub(crate) fn push(&mut self, chunk: Option<Vec<u8>>) -> Result<Step, String> {
        if self.in_handler {
            return Err("the document cannot be written to while one of its handlers runs".into());
        }
        self.step(match chunk {
            Some(bytes) => In::Write(bytes),
            None => In::End,
        })
    }

    /// Ends the running handler and goes on.
    pub(crate) fn finish_handler(&mut self) -> Result<Step, String> {
        if !self.in_handler {
            return Err("no HTMLRewriter handler is running".into());
        }
        self.step(In::Return)
    }

    /// Applies `call` to the running handler's token.
    pub(crate) fn call(&mut self, call: Call) -> Result<Answer, String> {
        if !self.in_handler {
            return Err(STALE.into());
        }
        let given = (call.a.len() + call.b.len()) as u64;
        if self.inserted + given > self.emitted + MAX_PENDING {
            return Err(format!(
                "content given to this HTMLRewriter's handlers is more than {} MiB ahead of \
                 what it has written out",
                MAX_PENDING >> 20
            ));
        }
        self.inserted += given;
        let coroutine = self.coroutine.as_mut().ok_or(FINISHED)?;
        match coroutine.resume(In::Call(call)) {
            CoroutineResult::Yield(Out::Answer(answer)) => answer,
            CoroutineResult::Yield(_) => Err("the HTMLRewriter lost its place".into()),
            CoroutineResult::Return(result) => {
                self.coroutine = None;
                self.in_handler = false;
                Err(result.err().unwrap_or_else(|| FINISHED.into()))
            }
        }
    }

    fn step(&mut self, input: In) -> Result<Step, String> {
        let coroutine = self.coroutine.as_mut().ok_or(FINISHED)?;
        let result = coroutine.resume(input);
        let output = std::mem::take(&mut *self.output.borrow_mut());
        self.emitted += output.len() as u64;
        match result {
            CoroutineResult::Yield(Out::Event(event)) => {
                self.in_handler = true;
                Ok(Step {
                    output,
                    event: Some(event),
                    done: false,
                })
            }
            CoroutineResult::Yield(Out::NeedInput) => {
                self.in_handler = false;
                Ok(Step {
                    output,
                    event: None,
                    done: false,
                })
            }
            CoroutineResult::Yield(Out::Answer(_)) => {
                self.coroutine = None;
                Err("the HTMLRewriter lost its place".into())
            }
            CoroutineResult::Return(result) => {
                self.coroutine = None;
                self.in_handler = false;
                result.map(|()| Step {
                    output,
                    event: None,
                    done: true,
                })
            }
        }
    }
}

/// A token's calls must come while its handler runs.
pub(crate) const STALE: &str = "This content token is no longer valid. Content tokens are only \
                                valid during the execution of the relevant content handler.";
const FINISHED: &str = "the HTMLRewriter has finished";

/// The coroutine's body: builds lol_html's rewriter and feeds it what the script sends.
fn run(
    plan: Plan,
    suspender: &Suspender,
    sink: Rc<RefCell<Vec<u8>>>,
    first: In,
) -> Result<(), String> {
    let mut settings = Settings::new()
        .with_encoding(plan.encoding)
        .with_memory_settings(MemorySettings::new().with_max_allowed_memory_usage(MAX_BUFFERED));
    // A handler of lol_html's that runs the script's handler `index` of `kind` on its token.
    macro_rules! served {
        ($token:ty, $kind:expr, $index:expr) => {{
            let s = suspender.clone();
            let event = Event {
                kind: $kind,
                index: $index,
            };
            move |token: &mut $token| serve(&s, event, token)
        }};
    }
    for (index, (selector, handlers)) in plan.elements.into_iter().enumerate() {
        let index = index as u32;
        let mut content = ElementContentHandlers::default();
        if handlers & has::FIRST != 0 {
            content = content.element(served!(Element<'_, '_>, Kind::Element, index));
        }
        if handlers & has::COMMENTS != 0 {
            content = content.comments(served!(Comment<'_>, Kind::Comment, index));
        }
        if handlers & has::TEXT != 0 {
            content = content.text(served!(TextChunk<'_>, Kind::Text, index));
        }
        settings = settings.append_element_content_handler((Cow::Owned(selector), content));
    }
    for (index, handlers) in plan.documents.into_iter().enumerate() {
        let index = index as u32;
        let mut content = DocumentContentHandlers::default();
        if handlers & has::FIRST != 0 {
            content = content.doctype(served!(Doctype<'_>, Kind::Doctype, index));
        }
        if handlers & has::COMMENTS != 0 {
            content = content.comments(served!(Comment<'_>, Kind::DocComment, index));
        }
        if handlers & has::TEXT != 0 {
            content = content.text(served!(TextChunk<'_>, Kind::DocText, index));
        }
        if handlers & has::END != 0 {
            content = content.end(served!(DocumentEnd<'_>, Kind::DocEnd, index));
        }
        settings = settings.append_document_content_handler(content);
    }
    let mut rewriter = HtmlRewriter::new(settings, move |chunk: &[u8]| {
        sink.borrow_mut().extend_from_slice(chunk);
    });
    let mut input = first;
    loop {
        match input {
            In::Write(bytes) => rewriter.write(&bytes).map_err(|e| e.to_string())?,
            In::End => return rewriter.end().map_err(|e| e.to_string()),
            In::Call(_) | In::Return => return Err(STALE.into()),
        }
        input = suspender.suspend(Out::NeedInput);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::html_rewriter::tokens::op;

    fn plan(elements: &[(&str, u8)], documents: &[u8]) -> Plan {
        Plan {
            elements: elements
                .iter()
                .map(|(s, h)| (s.parse().unwrap(), *h))
                .collect(),
            documents: documents.to_vec(),
            encoding: AsciiCompatibleEncoding::utf_8(),
        }
    }

    fn call(op: u8, a: &str) -> Call {
        Call {
            op,
            a: a.into(),
            ..Call::default()
        }
    }

    /// Runs handlers until the rewriter wants input; `each` is given every event.
    fn drive(
        session: &mut Session,
        mut step: Step,
        out: &mut Vec<u8>,
        each: &mut dyn FnMut(&mut Session, &Event),
    ) -> bool {
        loop {
            out.extend_from_slice(&step.output);
            let Some(event) = step.event else {
                return step.done;
            };
            each(session, &event);
            step = session.finish_handler().unwrap();
        }
    }

    #[test]
    fn a_handler_reads_and_changes_its_element_while_lol_html_waits() {
        let mut session = Session::new(plan(&[("a[href]", has::FIRST)], &[])).unwrap();
        let mut out = Vec::new();
        let mut seen = Vec::new();
        let mut each = |s: &mut Session, e: &Event| {
            assert_eq!((e.kind, e.index), (Kind::Element, 0));
            seen.push(s.call(call(op::GET_ATTRIBUTE, "href")).unwrap());
            s.call(Call {
                op: op::SET_ATTRIBUTE,
                a: "rel".into(),
                b: "x".into(),
                ..Call::default()
            })
            .unwrap();
        };
        // The tag is split across writes: lol_html buffers it and calls the handler once.
        for piece in ["<p><a hr", "ef=\"/1\">one</a><a href=/2>", "two</a>"] {
            let step = session.push(Some(piece.as_bytes().to_vec())).unwrap();
            assert!(!drive(&mut session, step, &mut out, &mut each));
        }
        let step = session.push(None).unwrap();
        assert!(drive(&mut session, step, &mut out, &mut each));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<p><a href=\"/1\" rel=\"x\">one</a><a href=/2 rel=\"x\">two</a>"
        );
        assert_eq!(
            seen,
            [
                Answer::Text(Some("/1".into())),
                Answer::Text(Some("/2".into()))
            ]
        );
        // Finished: nothing more is accepted.
        assert!(session.push(None).is_err());
    }

    #[test]
    fn calls_outside_a_handler_and_writes_inside_one_are_refused() {
        let mut session = Session::new(plan(&[("p", has::FIRST)], &[])).unwrap();
        assert_eq!(session.call(call(op::TAG_NAME, "")), Err(STALE.into()));
        assert!(session.finish_handler().is_err());
        let step = session.push(Some(b"<p>x</p>".to_vec())).unwrap();
        assert!(step.event.is_some());
        assert!(session.push(Some(b"more".to_vec())).is_err());
        assert_eq!(
            session.call(call(op::TAG_NAME, "")),
            Ok(Answer::Text(Some("p".into())))
        );
        // An operation the token does not have is refused, and the handler goes on.
        assert!(session.call(call(op::LAST_IN_TEXT_NODE, "")).is_err());
        assert!(session.finish_handler().unwrap().event.is_none());
    }

    #[test]
    fn end_tag_handlers_run_and_a_later_one_replaces_an_earlier_one() {
        let mut session = Session::new(plan(&[("div", has::FIRST)], &[has::END])).unwrap();
        let mut out = Vec::new();
        let mut each = |s: &mut Session, e: &Event| match e.kind {
            Kind::Element => {
                s.call(Call {
                    op: op::ON_END_TAG,
                    n: 1,
                    ..Call::default()
                })
                .unwrap();
                s.call(Call {
                    op: op::ON_END_TAG,
                    n: 2,
                    ..Call::default()
                })
                .unwrap();
            }
            Kind::EndTag => {
                assert_eq!(e.index, 2);
                s.call(Call {
                    op: op::BEFORE,
                    a: "<b>".into(),
                    html: true,
                    ..Call::default()
                })
                .unwrap();
            }
            Kind::DocEnd => {
                s.call(Call {
                    op: op::APPEND,
                    a: "<&>".into(),
                    ..Call::default()
                })
                .unwrap();
            }
            other => panic!("unexpected {other:?}"),
        };
        let step = session.push(Some(b"<div>x</div><br>".to_vec())).unwrap();
        drive(&mut session, step, &mut out, &mut each);
        let step = session.push(None).unwrap();
        assert!(drive(&mut session, step, &mut out, &mut each));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<div>x<b></div><br>&lt;&amp;&gt;"
        );
    }

    #[test]
    fn a_rewriter_dropped_inside_a_handler_unwinds_cleanly() {
        let mut session = Session::new(plan(&[("p", has::FIRST)], &[])).unwrap();
        let step = session.push(Some(b"<p>x</p>".to_vec())).unwrap();
        assert!(step.event.is_some());
        drop(session);
    }

    #[test]
    fn the_deepest_selectors_allowed_compile_on_the_rewriters_stack() {
        use crate::html_rewriter::selector_bounds::MAX_COMBINATORS;
        let deep = format!("a{}", " a".repeat(MAX_COMBINATORS));
        let child = format!("b{}", " > b".repeat(MAX_COMBINATORS));
        let many = [(deep.as_str(), has::FIRST), (child.as_str(), has::FIRST)];
        let mut session = Session::new(plan(&many, &[])).unwrap();
        let step = session.push(Some(b"<a><a>x</a></a>".to_vec())).unwrap();
        assert!(step.event.is_none());
        assert!(session.push(None).unwrap().done);
    }

    #[test]
    fn content_held_back_by_lol_html_is_bounded() {
        let mut session = Session::new(plan(&[("p", has::FIRST)], &[])).unwrap();
        let step = session.push(Some(b"<p>x".to_vec())).unwrap();
        assert!(step.event.is_some());
        // `append` is held until the end tag, which has not come.
        let chunk = "a".repeat(1 << 20);
        let mut refused = None;
        for i in 0..(MAX_PENDING >> 20) + 2 {
            let call = Call {
                op: op::APPEND,
                a: chunk.clone(),
                ..Call::default()
            };
            if let Err(e) = session.call(call) {
                refused = Some((i, e));
                break;
            }
        }
        let (at, message) = refused.expect("never refused");
        assert_eq!(at, MAX_PENDING >> 20, "{message}");
        assert!(message.contains("ahead of"), "{message}");
    }

    #[test]
    fn a_tag_larger_than_the_buffer_limit_is_an_error_not_a_crash() {
        let mut session = Session::new(plan(&[("p", has::FIRST)], &[])).unwrap();
        let mut result = session.push(Some(b"<p title=\"".to_vec()));
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..(MAX_BUFFERED >> 20) + 2 {
            match result {
                Ok(_) => result = session.push(Some(chunk.clone())),
                Err(_) => break,
            }
        }
        let message = result.err().expect("the limit was not reached");
        assert!(message.contains("memory"), "{message}");
    }
}
