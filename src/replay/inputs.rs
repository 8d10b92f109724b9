//! Reading `replay`'s inputs: files, directories walked recursively, standard input; and
//! splitting a text into documents.

use std::io::Read as _;
use std::path::{Path as FsPath, PathBuf};

use serde_json::Value;

/// One input as read: where from, and its text or why it could not be read.
#[derive(Debug, Clone)]
pub struct Input {
    /// The path as given (or found under a given directory), or `-`.
    pub source: String,
    /// The text, or the read error.
    pub text: Result<String, String>,
    /// Whether to parse as JSON only (`.json` files).
    pub json: bool,
}

/// Reads every input named on the command line; directories are walked recursively in sorted
/// order for `.json`, `.yaml` and `.yml` files. Never fails: unreadable inputs carry their error.
pub fn load_inputs(paths: &[String]) -> Vec<Input> {
    let mut inputs = Vec::new();
    for path in paths {
        if path == "-" {
            let mut text = String::new();
            let text = std::io::stdin()
                .read_to_string(&mut text)
                .map(|_| text)
                .map_err(|e| format!("cannot read standard input: {e}"));
            inputs.push(Input {
                source: "-".to_owned(),
                text,
                json: false,
            });
            continue;
        }
        let fs_path = FsPath::new(path);
        if fs_path.is_dir() {
            let mut files = Vec::new();
            walk(fs_path, &mut files, &mut inputs);
            if files.is_empty() {
                inputs.push(Input {
                    source: path.clone(),
                    text: Err("the directory holds no .json, .yaml or .yml file".to_owned()),
                    json: false,
                });
            }
            files.sort();
            inputs.extend(files.into_iter().map(|f| read_file(&f)));
        } else {
            inputs.push(read_file(fs_path));
        }
    }
    inputs
}

fn walk(dir: &FsPath, files: &mut Vec<PathBuf>, inputs: &mut Vec<Input>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            inputs.push(Input {
                source: dir.display().to_string(),
                text: Err(format!("cannot read directory: {e}")),
                json: false,
            });
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, files, inputs);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("json" | "yaml" | "yml")
        ) {
            files.push(path);
        }
    }
}

fn read_file(path: &FsPath) -> Input {
    let json = path.extension().and_then(|e| e.to_str()) == Some("json");
    let text = std::fs::read(path)
        .map_err(|e| format!("cannot read file: {e}"))
        .and_then(|bytes| {
            String::from_utf8(bytes).map_err(|_| "the file is not UTF-8 text".to_owned())
        });
    Input {
        source: path.display().to_string(),
        text,
        json,
    }
}

/// Parses an input into documents (empty YAML documents are dropped).
pub fn parse_documents(input: &Input) -> Result<Vec<Value>, String> {
    let text = input.text.as_ref().map_err(Clone::clone)?;
    let docs: Vec<Value> = if input.json {
        vec![serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?]
    } else {
        match serde_json::from_str(text) {
            Ok(doc) => vec![doc],
            Err(_) => serde_saphyr::from_multiple::<Value>(text)
                .map_err(|e| format!("malformed YAML: {e}"))?,
        }
    };
    let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    if docs.is_empty() {
        return Err("holds no document".to_owned());
    }
    Ok(docs)
}
