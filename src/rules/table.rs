//! The rule table rendered as Markdown for the documentation, generated from [`super::RULES`]
//! so the documents cannot drift from what the engine runs.
