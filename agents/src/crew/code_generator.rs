//! `code_generator`: a specification → one source file in the work directory, checked
//! to parse with the language's grammar before it is written.

use serde_json::{Map, Value, json};

use super::session::Session;
use super::source::{self, Parsed};
use super::workspace::WorkDir;
use super::{CrewConfig, extract, invalid, required_text, text};
use crate::agent::{Agent, AgentContext, AgentOutput};
use crate::errors::AgentError;
use crate::memory::MemoryKind;
use crate::model::Turn;
use crate::schema::{Field, FieldType, InputSchema};
use troupe_scanner::rules::Lang;

pub struct CodeGeneratorAgent {
    config: CrewConfig,
    schema: InputSchema,
}

impl CodeGeneratorAgent {
    pub fn new(config: CrewConfig) -> Self {
        Self {
            config,
            schema: InputSchema {
                fields: vec![
                    Field::new(
                        "specification",
                        FieldType::String,
                        true,
                        "what the code must do",
                    ),
                    Field::new(
                        "work_dir",
                        FieldType::String,
                        true,
                        "directory the file is written to",
                    ),
                    Field::new(
                        "module",
                        FieldType::Any,
                        false,
                        "module name (or an architect's {name, purpose}); names the file",
                    ),
                    Field::new(
                        "language",
                        FieldType::String,
                        false,
                        "python (default), rust, javascript, typescript, go, shell",
                    ),
                ],
                open: false,
            },
        }
    }
}

/// The first code block of the answer that parses as `lang` (salvaging a block the token
/// limit cut); with no fence at all, the whole answer.
pub fn parse_code(answer: &str, lang: Lang) -> Result<Parsed, String> {
    parse_code_where(answer, lang, |_| Ok(()))
}

/// The first code block that parses as `lang` and that `accept` accepts.
pub fn parse_code_where(
    answer: &str,
    lang: Lang,
    accept: impl Fn(&Parsed) -> Result<(), String>,
) -> Result<Parsed, String> {
    let blocks = extract::code_blocks(answer);
    if blocks.is_empty() {
        let parsed = source::parse_or_salvage(lang, answer, false).map_err(|problem| {
            format!(
                "it has no ```{} block, and {problem}",
                source::fence_tag(lang)
            )
        })?;
        accept(&parsed)?;
        return Ok(parsed);
    }
    let mut first_problem = None;
    for block in blocks {
        let checked = source::parse_or_salvage(lang, &block.body, !block.closed)
            .and_then(|parsed| accept(&parsed).map(|()| parsed));
        match checked {
            Ok(parsed) => return Ok(parsed),
            Err(problem) => {
                first_problem.get_or_insert(problem);
            }
        }
    }
    Err(first_problem.unwrap_or_else(|| "it holds no code".into()))
}

/// The module's name and purpose from `module`: a string, or `{name, purpose}`.
fn module_of(inputs: &Map<String, Value>) -> Result<(String, String), AgentError> {
    let (name, purpose) = match inputs.get("module") {
        None | Some(Value::Null) => ("main".to_string(), String::new()),
        Some(Value::String(name)) => (name.clone(), String::new()),
        Some(Value::Object(module)) => (
            module
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            module
                .get("purpose")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        ),
        Some(_) => return Err(invalid("module", "must be a name or {name, purpose}")),
    };
    let name = extract::identifier(&name).ok_or_else(|| {
        invalid(
            "module",
            format!("`{name}` is not a module name (letters, digits, _)"),
        )
    })?;
    Ok((name, purpose))
}

#[async_trait::async_trait]
impl Agent for CodeGeneratorAgent {
    fn kind(&self) -> &'static str {
        "code_generator"
    }
    fn description(&self) -> &'static str {
        "Writes a source file from a specification, checked to parse (model-backed)"
    }
    fn input_schema(&self) -> &InputSchema {
        &self.schema
    }

    async fn run(
        &self,
        inputs: Map<String, Value>,
        context: AgentContext,
    ) -> Result<AgentOutput, AgentError> {
        let specification = required_text(&inputs, "specification")?;
        let work = WorkDir::open("work_dir", required_text(&inputs, "work_dir")?)?;
        let lang = source::language(text(&inputs, "language").unwrap_or("python"))
            .map_err(|reason| invalid("language", reason))?;
        let (module, purpose) = module_of(&inputs)?;
        let tag = source::fence_tag(lang);
        let mut session = Session::begin(self.kind(), &context, &self.config)?;
        let notes = session.recall(specification).await;
        let purpose = if purpose.is_empty() {
            String::new()
        } else {
            format!(" It {purpose}.")
        };
        let prompt = |notes: &str| {
            vec![
                Turn::system(format!(
                    "You are a {tag} programmer. You answer with one ```{tag} code block and \
                     nothing else.{notes}"
                )),
                Turn::user(format!(
                    "Write the {tag} module `{module}`.{purpose}\nThe whole feature: {}",
                    super::quoted(specification, self.config.max_quoted_chars)
                )),
            ]
        };
        let parsed = session
            .ask_simpler_after_refusal(prompt(&notes), Some(prompt("")), "code", |answer| {
                parse_code(answer, lang)
            })
            .await?;
        let file = format!("{module}.{}", source::extension(lang));
        work.write("module", &file, &parsed.code)?;
        let lines = parsed.code.lines().count();
        session
            .record(
                MemoryKind::Episodic,
                format!(
                    "Wrote {file} ({lines} lines) for \"{}\"",
                    super::quoted(specification, 200)
                ),
                json!({ "file": file }),
            )
            .await;
        let mut outputs = Map::new();
        outputs.insert("module".into(), json!(module));
        outputs.insert("language".into(), json!(tag));
        outputs.insert("file".into(), json!(file));
        outputs.insert("files".into(), json!([file]));
        outputs.insert("lines".into(), json!(lines));
        outputs.insert("dropped_lines".into(), json!(parsed.dropped_lines));
        outputs.insert("work_dir".into(), json!(work.root().display().to_string()));
        Ok(session.finish(outputs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_must_parse_in_the_language_asked_for() {
        let good = "Here:\n```python\ndef add(a, b):\n    return a + b\n```\n";
        assert!(parse_code(good, Lang::Python).is_ok_and(|p| p.code.contains("def add")));
        let broken = "```python\ndef add(a, b:\n    return\n```";
        assert!(parse_code(broken, Lang::Python).is_err_and(|e| e.contains("does not parse")));
        assert!(parse_code("```rust\nfn main() { let x = ; }\n```", Lang::Rust).is_err());
        assert!(parse_code("I will not write code.", Lang::Python).is_err());
    }

    #[test]
    fn module_names_are_checked() {
        let inputs = |module: Value| {
            let mut map = Map::new();
            map.insert("module".into(), module);
            map
        };
        assert_eq!(
            module_of(&inputs(
                json!({"name": "Task Store", "purpose": "keeps tasks"})
            ))
            .map(|m| m.0),
            Ok("task_store".to_string())
        );
        assert!(module_of(&inputs(json!("../../etc/passwd"))).is_err());
        assert!(module_of(&inputs(json!(7))).is_err());
    }
}
