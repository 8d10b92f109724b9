//! Reading inputs, for `replay`, `explain` and the `documents` fuzz target: files, directories
//! walked recursively, standard input ([`load_inputs`] -> [`Input`]); splitting a text into
//! documents ([`parse_documents`]); and reading one Image config from an input ([`read_image`],
//! also `--old`'s reader [`old_object_from`]).
// An adapter (clippy.toml): it reads files, directories and standard input.
#![allow(clippy::disallowed_methods)]

use std::borrow::Cow;
use std::fmt;
use std::io::Read as _;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{Budget, DefaultMessageFormatter, MessageFormatter, SnippetMode};

use crate::envelope::{EnvelopeError, parse_review};

/// One input as read: where from, and its text or why it could not be read.
#[derive(Debug, Clone)]
pub struct Input {
    /// The path as given (or found under a given directory), or `-`.
    pub source: String,
    /// The text, or why it could not be read.
    pub text: Result<String, ReadError>,
    /// Whether to parse as JSON only (`.json` files).
    pub json: bool,
}

/// Why an input could not be read: its kind, and the I/O or walk error behind it.
#[derive(Debug, Clone)]
pub struct ReadError {
    /// What could not be read.
    kind: ReadErrorKind,
}

/// The kinds of [`ReadError`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ReadErrorKind {
    /// Standard input cannot be read.
    Stdin(Arc<std::io::Error>),
    /// The file cannot be read.
    File(Arc<std::io::Error>),
    /// The file is not UTF-8 text.
    NotUtf8,
    /// A directory named on the command line holds no fixture file.
    NoFixture,
    /// A symbolic link leads back to this ancestor directory; it is not followed.
    LinkLoop {
        /// The link.
        link: PathBuf,
        /// The directory it leads back to.
        ancestor: PathBuf,
    },
    /// A directory cannot be walked.
    Directory(Arc<walkdir::Error>),
}

impl ReadError {
    fn new(kind: ReadErrorKind) -> Self {
        ReadError { kind }
    }

    /// What could not be read.
    pub fn kind(&self) -> &ReadErrorKind {
        &self.kind
    }
}

impl From<std::io::Error> for ReadError {
    /// A file that cannot be read.
    fn from(e: std::io::Error) -> Self {
        ReadError::new(ReadErrorKind::File(Arc::new(e)))
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ReadErrorKind::Stdin(e) => write!(f, "cannot read standard input: {e}"),
            ReadErrorKind::File(e) => write!(f, "cannot read file: {e}"),
            ReadErrorKind::NotUtf8 => f.write_str("the file is not UTF-8 text"),
            ReadErrorKind::NoFixture => {
                f.write_str("the directory holds no .json, .yaml or .yml file")
            }
            ReadErrorKind::LinkLoop { link, ancestor } => write!(
                f,
                "symbolic link loop: {} leads back to {}; not followed",
                link.display(),
                ancestor.display()
            ),
            ReadErrorKind::Directory(e) => match e.io_error() {
                Some(io) => write!(f, "cannot read directory: {io}"),
                None => write!(f, "cannot read directory: {e}"),
            },
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ReadErrorKind::Stdin(e) | ReadErrorKind::File(e) => Some(e.as_ref()),
            ReadErrorKind::Directory(e) => Some(e.as_ref()),
            ReadErrorKind::NotUtf8 | ReadErrorKind::NoFixture | ReadErrorKind::LinkLoop { .. } => {
                None
            }
        }
    }
}

/// Why an input holds no usable document: its kind, and for a YAML syntax error the lines
/// around it.
#[derive(Debug, Clone)]
pub struct InputError {
    /// Boxed: the error travels in the `Err` of several results and should stay small.
    kind: Box<InputErrorKind>,
    /// The snippet of a YAML error, headed by the input's name.
    detail: Option<String>,
}

/// The kinds of [`InputError`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum InputErrorKind {
    /// The input could not be read.
    Read(ReadError),
    /// A `.json` file (or standard input read as JSON) is not JSON.
    Json(Arc<serde_json::Error>),
    /// The text is neither JSON nor YAML, or the YAML is too large or too complex (a budget
    /// breach).
    Yaml(Arc<serde_saphyr::Error>),
    /// The input holds only empty documents.
    Empty,
}

impl InputError {
    fn new(kind: InputErrorKind) -> Self {
        InputError {
            kind: Box::new(kind),
            detail: None,
        }
    }

    /// What is wrong with the input.
    pub fn kind(&self) -> &InputErrorKind {
        &self.kind
    }

    /// For a YAML syntax error, the lines around it with a marker, headed by the input's name
    /// (several lines; `Display` gives the one-line message).
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
}

impl fmt::Display for InputError {
    /// One line: what is wrong, and where (line and column) when that is known.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind.as_ref() {
            InputErrorKind::Read(e) => fmt::Display::fmt(e, f),
            InputErrorKind::Json(e) => write!(f, "malformed JSON: {e}"),
            InputErrorKind::Yaml(e) => match original(e) {
                // Where a budget ran out says little (an alias's use, its anchor, some node).
                serde_saphyr::Error::Budget { breach, .. } => f.write_str(&budget_message(breach)),
                _ => {
                    let plain = e.render_with_options(serde_saphyr::render_options! {
                        formatter: &Messages,
                        snippets: SnippetMode::Off,
                    });
                    write!(f, "malformed YAML: {}", first_line(&plain))
                }
            },
            InputErrorKind::Empty => f.write_str("holds no document"),
        }
    }
}

impl std::error::Error for InputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self.kind.as_ref() {
            InputErrorKind::Read(e) => Some(e),
            InputErrorKind::Json(e) => Some(e.as_ref()),
            InputErrorKind::Yaml(e) => Some(e.as_ref()),
            InputErrorKind::Empty => None,
        }
    }
}

/// The extensions read from a directory.
fn is_fixture(path: &FsPath) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("json" | "yaml" | "yml")
    )
}

/// Reads every input named on the command line; directories are walked recursively in sorted
/// order for `.json`, `.yaml` and `.yml` files, following symbolic links (a link back to one of
/// its own ancestors is reported once, as an error, and not followed). Never fails: unreadable
/// inputs carry their error.
pub fn load_inputs(paths: &[String]) -> Vec<Input> {
    let mut inputs = Vec::new();
    for path in paths {
        if path == "-" {
            let mut text = String::new();
            let text = std::io::stdin()
                .read_to_string(&mut text)
                .map(|_| text)
                .map_err(|e| ReadError::new(ReadErrorKind::Stdin(Arc::new(e))));
            inputs.push(Input {
                source: "-".to_owned(),
                text,
                json: false,
            });
            continue;
        }
        let fs_path = FsPath::new(path);
        if fs_path.is_dir() {
            let found = walk(fs_path);
            if found.is_empty() {
                inputs.push(Input {
                    source: path.clone(),
                    text: Err(ReadError::new(ReadErrorKind::NoFixture)),
                    json: false,
                });
            }
            inputs.extend(found.into_iter().map(|(path, problem)| match problem {
                None => read_file(&path),
                Some(error) => Input {
                    source: path.display().to_string(),
                    text: Err(error),
                    json: false,
                },
            }));
        } else {
            inputs.push(read_file(fs_path));
        }
    }
    inputs
}

/// The fixture files under `dir` and the entries that cannot be walked (with why), in path
/// order.
fn walk(dir: &FsPath) -> Vec<(PathBuf, Option<ReadError>)> {
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
    {
        match entry {
            Ok(entry) => {
                if !entry.file_type().is_dir() && is_fixture(entry.path()) {
                    found.push((entry.into_path(), None));
                }
            }
            Err(e) => {
                let path = e.path().unwrap_or(dir).to_owned();
                if let Some(ancestor) = e.loop_ancestor() {
                    let kind = ReadErrorKind::LinkLoop {
                        link: path.clone(),
                        ancestor: ancestor.to_owned(),
                    };
                    found.push((path, Some(ReadError::new(kind))));
                } else if is_dangling_link(&path) {
                    // As if it were a file: a fixture's name is reported unreadable when read.
                    if is_fixture(&path) {
                        found.push((path, None));
                    }
                } else {
                    let kind = ReadErrorKind::Directory(Arc::new(e));
                    found.push((path, Some(ReadError::new(kind))));
                }
            }
        }
    }
    // By path; of two entries for one path, the readable one first.
    found.sort_by(|(a, a_error), (b, b_error)| {
        a.cmp(b).then(a_error.is_some().cmp(&b_error.is_some()))
    });
    found
}

fn is_dangling_link(path: &FsPath) -> bool {
    path.symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
        && path.metadata().is_err()
}

fn read_file(path: &FsPath) -> Input {
    let json = path.extension().and_then(|e| e.to_str()) == Some("json");
    let text = std::fs::read(path)
        .map_err(ReadError::from)
        .and_then(|bytes| {
            String::from_utf8(bytes).map_err(|_| ReadError::new(ReadErrorKind::NotUtf8))
        });
    Input {
        source: path.display().to_string(),
        text,
        json,
    }
}

/// Parses an input into documents (empty YAML documents are dropped).
pub fn parse_documents(input: &Input) -> Result<Vec<Value>, InputError> {
    let text = input
        .text
        .as_ref()
        .map_err(|e| InputError::new(InputErrorKind::Read(e.clone())))?;
    let docs: Vec<Value> = if input.json {
        vec![
            serde_json::from_str(text)
                .map_err(|e| InputError::new(InputErrorKind::Json(Arc::new(e))))?,
        ]
    } else {
        match serde_json::from_str(text) {
            Ok(doc) => vec![doc],
            Err(_) => serde_saphyr::from_multiple::<Value>(text)
                .map_err(|e| yaml_error(e, &input.source))?,
        }
    };
    let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    if docs.is_empty() {
        return Err(InputError::new(InputErrorKind::Empty));
    }
    Ok(docs)
}

/// A YAML error, with the snippet around it headed by `source`.
fn yaml_error(error: serde_saphyr::Error, source: &str) -> InputError {
    let rendered = error.render_with_options(serde_saphyr::render_options! {
        formatter: &Messages,
        source_name: Some(source),
    });
    // The snippet renderer heads the window with `error: <message>`, which `Display` says.
    let detail = match rendered.trim_end().split_once('\n') {
        Some((head, rest)) if head.starts_with("error:") => Some(rest.to_owned()),
        Some(_) => Some(rendered.trim_end().to_owned()),
        None => None,
    };
    InputError {
        kind: Box::new(InputErrorKind::Yaml(Arc::new(error))),
        detail,
    }
}

/// The error under its snippet and alias wrappers.
fn original(mut error: &serde_saphyr::Error) -> &serde_saphyr::Error {
    while let serde_saphyr::Error::AliasError { error: inner, .. }
    | serde_saphyr::Error::WithSnippet { error: inner, .. } = error
    {
        error = inner;
    }
    error
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("").trim_end()
}

/// serde-saphyr's messages, except that budget breaches are said in words rather than as a
/// Rust value (`Nodes { nodes: 250001 }`).
struct Messages;

impl MessageFormatter for Messages {
    fn format_message<'a>(&self, err: &'a serde_saphyr::Error) -> Cow<'a, str> {
        match err {
            serde_saphyr::Error::Budget { breach, .. } => Cow::Owned(budget_message(breach)),
            _ => DefaultMessageFormatter.format_message(err),
        }
    }
}

/// A budget breach in words, with the limit that was passed (`parse_documents` uses the
/// default budget).
fn budget_message(breach: &BudgetBreach) -> String {
    let limits = Budget::default();
    match breach {
        BudgetBreach::Nodes { .. } => format!(
            "too many YAML nodes (alias expansion?): limit {}",
            limits.max_nodes
        ),
        BudgetBreach::Events { .. } => format!(
            "too many YAML events (alias expansion?): limit {}",
            limits.max_events
        ),
        BudgetBreach::Aliases { .. } => {
            format!("too many YAML aliases: limit {}", limits.max_aliases)
        }
        BudgetBreach::Anchors { .. } => {
            format!("too many YAML anchors: limit {}", limits.max_anchors)
        }
        BudgetBreach::AliasAnchorRatio { aliases, anchors } => format!(
            "too many YAML aliases for the anchors ({aliases} aliases of {anchors} anchors; alias expansion?)"
        ),
        BudgetBreach::Depth { .. } => {
            format!("YAML nested too deeply: limit {} levels", limits.max_depth)
        }
        BudgetBreach::Documents { .. } => {
            format!("too many YAML documents: limit {}", limits.max_documents)
        }
        BudgetBreach::ScalarBytes { .. } => format!(
            "too much YAML scalar text: limit {} bytes",
            limits.max_total_scalar_bytes
        ),
        BudgetBreach::MergeKeys { .. } => {
            format!("too many YAML merge keys: limit {}", limits.max_merge_keys)
        }
        BudgetBreach::RecordedAnchorEvents { .. } | BudgetBreach::RecordedAnchorBytes { .. } => {
            "anchored YAML content too large (alias expansion?)".to_owned()
        }
        BudgetBreach::SequenceUnbalanced => "unbalanced YAML sequence".to_owned(),
        _ => "the YAML is too large or too complex".to_owned(),
    }
}

/// A config file as read: the Image, and the oldObject when the file is an AdmissionReview
/// that carries one.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigFile {
    /// The Image object.
    pub image: Value,
    /// An AdmissionReview's `oldObject`.
    pub old: Option<Value>,
}

/// Why a file holds no usable config (see [`read_image`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ConfigFileError {
    /// The file cannot be read or parsed.
    Input(InputError),
    /// An AdmissionReview in it is malformed.
    Review(EnvelopeError),
    /// An AdmissionReview in it carries no object (a DELETE).
    NoObject,
    /// It holds no object at all.
    NoImage,
    /// It holds this many objects, where one Image is needed.
    Many(usize),
    /// The object is not a JSON object.
    NotAnObject,
    /// The object is of this other kind.
    OtherKind(String),
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigFileError::Input(e) => std::fmt::Display::fmt(e, f),
            ConfigFileError::Review(e) => std::fmt::Display::fmt(e, f),
            ConfigFileError::NoObject => f.write_str("the AdmissionReview carries no object"),
            ConfigFileError::NoImage => f.write_str("holds no Image"),
            ConfigFileError::Many(n) => write!(f, "holds {n} objects; one Image is needed"),
            ConfigFileError::NotAnObject => f.write_str("the Image is not a JSON object"),
            ConfigFileError::OtherKind(kind) => write!(f, "holds a {kind}, not an Image"),
        }
    }
}

impl std::error::Error for ConfigFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigFileError::Input(e) => Some(e),
            ConfigFileError::Review(e) => Some(e),
            _ => None,
        }
    }
}

/// Reads an Image, a one-item `ImageList`/`List`, or an AdmissionReview (its object, and its
/// oldObject).
pub fn read_image(input: &Input) -> Result<ConfigFile, ConfigFileError> {
    let mut images = Vec::new();
    let mut old = None;
    for doc in parse_documents(input).map_err(ConfigFileError::Input)? {
        match doc.get("kind").and_then(Value::as_str) {
            Some("List" | "ImageList") => images.extend(
                doc.get("items")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .cloned(),
            ),
            Some("AdmissionReview") => {
                let review = parse_review(doc).map_err(ConfigFileError::Review)?;
                match review.request.object {
                    Some(object) => images.push(object),
                    None => return Err(ConfigFileError::NoObject),
                }
                old = review.request.old_object.or(old);
            }
            _ => images.push(doc),
        }
    }
    let image = match images.len() {
        1 => images.pop().ok_or(ConfigFileError::NoImage)?,
        0 => return Err(ConfigFileError::NoImage),
        n => return Err(ConfigFileError::Many(n)),
    };
    if !image.is_object() {
        return Err(ConfigFileError::NotAnObject);
    }
    match image.get("kind").and_then(Value::as_str) {
        None | Some("Image") => Ok(ConfigFile { image, old }),
        Some(kind) => Err(ConfigFileError::OtherKind(kind.to_owned())),
    }
}

/// Reads the old object for `--old` (see [`read_image`]).
pub fn old_object_from(input: &Input) -> Result<Value, ConfigFileError> {
    read_image(input).map(|c| c.image)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Result<Vec<Value>, InputError> {
        parse_documents(&Input {
            source: "dir/fixture.yaml".to_owned(),
            text: Ok(text.to_owned()),
            json: false,
        })
    }

    #[test]
    fn a_syntax_error_is_one_line_and_the_snippet_names_the_file() {
        let e = yaml("a: b\nkind: [Image\nmetadata: {name: cluster}\n").unwrap_err();
        assert!(matches!(e.kind(), InputErrorKind::Yaml(_)), "{e:?}");
        let message = e.to_string();
        assert!(!message.contains('\n'), "{message}");
        assert!(message.starts_with("malformed YAML: "), "{message}");
        assert!(!message.contains("error:"), "{message}");
        assert!(message.contains("line 3"), "{message}");
        let detail = e.detail().expect("a snippet");
        assert!(detail.contains("dir/fixture.yaml:3:"), "{detail}");
        assert!(!detail.contains("<input>"), "{detail}");
        assert!(detail.contains("metadata: {name: cluster}"), "{detail}");
    }

    #[test]
    fn a_budget_breach_is_said_in_words() {
        let mut text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n".to_owned();
        for (name, prev) in [("b", "a"), ("c", "b"), ("d", "c"), ("e", "d"), ("f", "e")] {
            let items = vec![format!("*{prev}"); 10].join(", ");
            text.push_str(&format!("{name}: &{name} [{items}]\n"));
        }
        let e = yaml(&text).unwrap_err();
        assert_eq!(
            e.to_string(),
            "too many YAML nodes (alias expansion?): limit 250000"
        );
        let detail = e.detail().expect("a snippet");
        assert!(detail.contains("dir/fixture.yaml:6:12"), "{detail}");
        assert!(!detail.contains("Nodes {"), "{detail}");
    }

    #[test]
    fn json_errors_are_one_line() {
        let e = parse_documents(&Input {
            source: "x.json".to_owned(),
            text: Ok("{\"a\":".to_owned()),
            json: true,
        })
        .unwrap_err();
        assert!(matches!(e.kind(), InputErrorKind::Json(_)), "{e:?}");
        assert!(e.to_string().starts_with("malformed JSON: "), "{e}");
        assert_eq!(e.detail(), None);
    }
}
