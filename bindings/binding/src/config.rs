//! A binding's part of an app's `edge.toml`, and the errors reading it gives.

use serde::de::DeserializeOwned;

/// The binding's top-level key of one `edge.toml`, still holding the source spans, so a
/// binding's errors point at lines as the rest of the file's do.
pub struct Section<'a> {
    key: &'a str,
    value: toml::Spanned<toml::de::DeValue<'a>>,
    text: &'a str,
}

impl<'a> Section<'a> {
    /// The section `key` = `value`, cut from the document `text`.
    pub fn new(key: &'a str, value: toml::Spanned<toml::de::DeValue<'a>>, text: &'a str) -> Self {
        Self { key, value, text }
    }

    /// The section `key` of the document `text`, if it has one (for a binding's own tests:
    /// the runtime cuts every section from one parse).
    pub fn of_document(text: &'a str, key: &'a str) -> Result<Option<Self>, ConfigIssue> {
        let doc = toml::de::DeTable::parse(text).map_err(|mut e| {
            e.set_input(Some(text));
            ConfigIssue::Parse(e.to_string().trim_end().to_string())
        })?;
        Ok(doc
            .into_inner()
            .into_iter()
            .find(|(k, _)| k.get_ref() == key)
            .map(|(_, value)| Self::new(key, value, text)))
    }

    /// The key (`"kv_namespaces"`).
    pub fn key(&self) -> &str {
        self.key
    }

    /// The section as `T`, or a [`ConfigIssue::Parse`] with the line and column.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ConfigIssue> {
        let de = toml::de::ValueDeserializer::from(self.value.clone());
        T::deserialize(de).map_err(|mut e| {
            e.set_input(Some(self.text));
            let message = e.to_string();
            ConfigIssue::Parse(format!("{} (in `{}`)", message.trim_end(), self.key))
        })
    }
}

/// One entry a binding read: the name it puts on `env` (if any: a trigger puts none), where
/// it is in the file, and what it means to the binding.
#[derive(Clone, Debug)]
pub struct Declared<E> {
    /// The name on `env`, if the entry puts one there.
    pub name: Option<String>,
    /// Where the entry is, for errors: the key its name was given under
    /// (`"kv_namespaces[0].binding"`), or the entry's own (`"triggers.crons[0]"`).
    pub name_key: String,
    /// The entry.
    pub entry: E,
}

/// What is wrong with a binding's section; the runtime adds the file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigIssue {
    /// The section is not of the expected shape (what the TOML parser said, with line and
    /// column).
    #[error("{0}")]
    Parse(String),
    /// A key has a value that parses but is not acceptable.
    #[error("`{key}`: {reason}")]
    Invalid {
        /// The key (`"kv_namespaces[0].id"`).
        key: String,
        /// What is wrong and what is expected.
        reason: String,
    },
}

impl ConfigIssue {
    /// An unacceptable value at `key`.
    pub fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Whether `s` can be a name on `env` reachable as `env.NAME`: a JavaScript identifier.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}
