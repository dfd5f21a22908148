//! What a Worker's handler can do to the token it is given, applied to lol_html's token.
//!
//! Each method of Workers' `Element`, `EndTag`, `Comment`, `TextChunk`, `Doctype` and
//! `DocumentEnd` is a [`Call`]: an operation code and its arguments. A token answers the
//! operations it has and refuses the others (the script only sends those its class has).

use lol_html::html_content::{
    Comment, ContentType, Doctype, DocumentEnd, Element, EndTag, TextChunk,
};
use serde::Serialize;

use super::session::{Suspender, on_end_tag};

/// An operation on a token, from the script.
#[derive(Debug, Default)]
pub(crate) struct Call {
    /// One of [`op`].
    pub op: u8,
    /// The first string argument (a name, or content).
    pub a: String,
    /// The second string argument (an attribute value).
    pub b: String,
    /// `{ html: true }` for content.
    pub html: bool,
    /// A number argument (an end tag handler's id).
    pub n: u32,
}

/// The operation codes, shared with `03_html_rewriter.js`.
pub(crate) mod op {
    pub const TAG_NAME: u8 = 0;
    pub const SET_TAG_NAME: u8 = 1;
    pub const ATTRIBUTES: u8 = 2;
    pub const GET_ATTRIBUTE: u8 = 3;
    pub const HAS_ATTRIBUTE: u8 = 4;
    pub const SET_ATTRIBUTE: u8 = 5;
    pub const REMOVE_ATTRIBUTE: u8 = 6;
    pub const NAMESPACE_URI: u8 = 7;
    pub const REMOVED: u8 = 8;
    pub const BEFORE: u8 = 11;
    pub const AFTER: u8 = 12;
    pub const PREPEND: u8 = 13;
    pub const APPEND: u8 = 14;
    pub const SET_INNER_CONTENT: u8 = 15;
    pub const REPLACE: u8 = 16;
    pub const REMOVE: u8 = 17;
    pub const REMOVE_AND_KEEP_CONTENT: u8 = 18;
    pub const ON_END_TAG: u8 = 19;
    pub const TEXT: u8 = 20;
    pub const SET_TEXT: u8 = 21;
    pub const LAST_IN_TEXT_NODE: u8 = 22;
    pub const NAME: u8 = 23;
    pub const SET_NAME: u8 = 24;
    pub const PUBLIC_ID: u8 = 25;
    pub const SYSTEM_ID: u8 = 26;
}

/// A call's result, as the script sees it.
#[derive(Debug, Serialize, PartialEq)]
#[serde(untagged)]
pub(crate) enum Answer {
    /// `undefined` (the method returns its token).
    Unit,
    /// A boolean.
    Bool(bool),
    /// A string or `null`.
    Text(Option<String>),
    /// `[name, value]` pairs.
    Attributes(Vec<(String, String)>),
}

/// A token the script's handler is given.
pub(crate) trait Token {
    /// Applies `call`, or says why it cannot be.
    fn call(&mut self, call: Call, suspender: &Suspender) -> Result<Answer, String>;
}

fn content_type(html: bool) -> ContentType {
    if html {
        ContentType::Html
    } else {
        ContentType::Text
    }
}

fn unsupported(what: &str, call: &Call) -> Result<Answer, String> {
    Err(format!("{what} has no operation {}", call.op))
}

impl Token for Element<'_, '_> {
    fn call(&mut self, call: Call, suspender: &Suspender) -> Result<Answer, String> {
        let kind = content_type(call.html);
        match call.op {
            op::TAG_NAME => return Ok(Answer::Text(Some(self.tag_name()))),
            op::SET_TAG_NAME => self.set_tag_name(&call.a).map_err(|e| e.to_string())?,
            op::ATTRIBUTES => {
                return Ok(Answer::Attributes(
                    self.attributes()
                        .iter()
                        .map(|a| (a.name(), a.value()))
                        .collect(),
                ));
            }
            op::GET_ATTRIBUTE => return Ok(Answer::Text(self.get_attribute(&call.a))),
            op::HAS_ATTRIBUTE => return Ok(Answer::Bool(self.has_attribute(&call.a))),
            op::SET_ATTRIBUTE => {
                self.set_attribute(&call.a, &call.b)
                    .map_err(|e| e.to_string())?;
            }
            op::REMOVE_ATTRIBUTE => self.remove_attribute(&call.a),
            op::NAMESPACE_URI => {
                return Ok(Answer::Text(Some(self.namespace_uri().to_owned())));
            }
            op::REMOVED => return Ok(Answer::Bool(self.removed())),
            op::BEFORE => self.before(&call.a, kind),
            op::AFTER => self.after(&call.a, kind),
            op::PREPEND => self.prepend(&call.a, kind),
            op::APPEND => self.append(&call.a, kind),
            op::SET_INNER_CONTENT => self.set_inner_content(&call.a, kind),
            op::REPLACE => self.replace(&call.a, kind),
            op::REMOVE => self.remove(),
            op::REMOVE_AND_KEEP_CONTENT => self.remove_and_keep_content(),
            op::ON_END_TAG => on_end_tag(self, suspender, call.n)?,
            _ => return unsupported("Element", &call),
        }
        Ok(Answer::Unit)
    }
}

impl Token for EndTag<'_> {
    fn call(&mut self, call: Call, _: &Suspender) -> Result<Answer, String> {
        let kind = content_type(call.html);
        match call.op {
            op::NAME => return Ok(Answer::Text(Some(self.name()))),
            op::SET_NAME => {
                if call.a.is_empty() {
                    return Err("an end tag's name cannot be empty".into());
                }
                self.set_name_str(call.a);
            }
            op::BEFORE => self.before(&call.a, kind),
            op::AFTER => self.after(&call.a, kind),
            op::REMOVE => self.remove(),
            _ => return unsupported("EndTag", &call),
        }
        Ok(Answer::Unit)
    }
}

impl Token for Comment<'_> {
    fn call(&mut self, call: Call, _: &Suspender) -> Result<Answer, String> {
        let kind = content_type(call.html);
        match call.op {
            op::TEXT => return Ok(Answer::Text(Some(self.text()))),
            op::SET_TEXT => self.set_text(&call.a).map_err(|e| e.to_string())?,
            op::REMOVED => return Ok(Answer::Bool(self.removed())),
            op::BEFORE => self.before(&call.a, kind),
            op::AFTER => self.after(&call.a, kind),
            op::REPLACE => self.replace(&call.a, kind),
            op::REMOVE => self.remove(),
            _ => return unsupported("Comment", &call),
        }
        Ok(Answer::Unit)
    }
}

impl Token for TextChunk<'_> {
    fn call(&mut self, call: Call, _: &Suspender) -> Result<Answer, String> {
        let kind = content_type(call.html);
        match call.op {
            op::TEXT => return Ok(Answer::Text(Some(self.as_str().to_owned()))),
            op::LAST_IN_TEXT_NODE => return Ok(Answer::Bool(self.last_in_text_node())),
            op::REMOVED => return Ok(Answer::Bool(self.removed())),
            op::BEFORE => self.before(&call.a, kind),
            op::AFTER => self.after(&call.a, kind),
            op::REPLACE => self.replace(&call.a, kind),
            op::REMOVE => self.remove(),
            _ => return unsupported("Text", &call),
        }
        Ok(Answer::Unit)
    }
}

impl Token for Doctype<'_> {
    fn call(&mut self, call: Call, _: &Suspender) -> Result<Answer, String> {
        match call.op {
            op::NAME => Ok(Answer::Text(self.name())),
            op::PUBLIC_ID => Ok(Answer::Text(self.public_id())),
            op::SYSTEM_ID => Ok(Answer::Text(self.system_id())),
            op::REMOVED => Ok(Answer::Bool(self.removed())),
            op::REMOVE => {
                self.remove();
                Ok(Answer::Unit)
            }
            _ => unsupported("Doctype", &call),
        }
    }
}

impl Token for DocumentEnd<'_> {
    fn call(&mut self, call: Call, _: &Suspender) -> Result<Answer, String> {
        match call.op {
            op::APPEND => {
                self.append(&call.a, content_type(call.html));
                Ok(Answer::Unit)
            }
            _ => unsupported("DocumentEnd", &call),
        }
    }
}
