//! `code_generator`: a specification → one source file in the work directory, checked
//! to parse with the language's grammar before it is written.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::inputs::{Text, given};
use super::source::{self, Parsed};
use super::workspace::WorkDir;
use super::{Conclusion, CrewConfig, CrewKind, Question, extract, invalid, only};
use crate::errors::AgentError;
use crate::memory::MemoryKind;
use crate::model::Turn;
use troupe_scanner::rules::Lang;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeGeneratorInputs {
    /// What the code must do.
    specification: Text,
    /// Directory the file is written to.
    work_dir: Text,
    /// Module name (or an architect's {name, purpose}); names the file.
    module: Option<Value>,
    /// python (default), rust, javascript, typescript, go, shell.
    language: Option<String>,
}

/// The inputs, checked: where to write which module in which language.
pub struct Assignment {
    specification: Text,
    work: WorkDir,
    lang: Lang,
    module: String,
    purpose: String,
}

#[derive(Default)]
pub struct CodeGenerator;

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
fn module_of(module: Option<&Value>) -> Result<(String, String), AgentError> {
    let (name, purpose) = match module {
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

impl CrewKind for CodeGenerator {
    const KIND: &'static str = "code_generator";
    const DESCRIPTION: &'static str =
        "Writes a source file from a specification, checked to parse (model-backed)";
    type Inputs = CodeGeneratorInputs;
    type Task = Assignment;
    type Answer = Parsed;

    fn prepare(
        &self,
        inputs: CodeGeneratorInputs,
        config: &CrewConfig,
    ) -> Result<Assignment, AgentError> {
        let work = WorkDir::open(&config.workspace, "work_dir", &inputs.work_dir)?;
        let lang = source::language(given(&inputs.language).unwrap_or("python"))
            .map_err(|reason| invalid("language", reason))?;
        let (mut module, purpose) = module_of(inputs.module.as_ref())?;
        if source::shadows_standard_library(lang, &module) {
            module.push_str("_module");
        }
        Ok(Assignment {
            specification: inputs.specification,
            work,
            lang,
            module,
            purpose,
        })
    }

    fn questions(&self, task: &Assignment, config: &CrewConfig) -> Vec<Question> {
        let tag = source::fence_tag(task.lang);
        let purpose = if task.purpose.is_empty() {
            String::new()
        } else {
            format!(" It {}.", task.purpose)
        };
        let turns = vec![
            Turn::system(format!(
                "You are a {tag} programmer. You answer with one ```{tag} code block and \
                 nothing else."
            )),
            Turn::user(format!(
                "Write the {tag} module `{}`.{purpose}\nThe whole feature: {}",
                task.module,
                super::quoted(&task.specification, config.max_quoted_chars)
            )),
        ];
        vec![Question {
            recall: task.specification.to_string(),
            task_type: "code",
            simpler: Some(turns.clone()),
            turns,
        }]
    }

    fn parse(&self, task: &Assignment, answer: &str) -> Result<Parsed, String> {
        parse_code(answer, task.lang)
    }

    fn conclude(&self, task: Assignment, answers: Vec<Parsed>) -> Result<Conclusion, AgentError> {
        let parsed = only(answers)?;
        let file = format!("{}.{}", task.module, source::extension(task.lang));
        task.work.write("module", &file, &parsed.code)?;
        let lines = parsed.code.lines().count();
        let memories = vec![(
            MemoryKind::Episodic,
            format!(
                "Wrote {file} ({lines} lines) for \"{}\"",
                super::quoted(&task.specification, 200)
            ),
            json!({ "file": file }),
        )];
        let mut outputs = Map::new();
        outputs.insert("module".into(), json!(task.module));
        outputs.insert("language".into(), json!(source::fence_tag(task.lang)));
        outputs.insert("file".into(), json!(file));
        outputs.insert("files".into(), json!([file]));
        outputs.insert("lines".into(), json!(lines));
        outputs.insert("dropped_lines".into(), json!(parsed.dropped_lines));
        outputs.insert(
            "work_dir".into(),
            json!(task.work.root().display().to_string()),
        );
        Ok(Conclusion { outputs, memories })
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
        assert_eq!(
            parse_code("```rust\nfn main() { let x = ; }\n```", Lang::Rust).map(|p| p.code),
            Err("the rust code does not parse (line 1)".into())
        );
        assert_eq!(
            parse_code("I will not write code.", Lang::Python).map(|p| p.code),
            Err("it has no ```python block, and the python code does not parse (line 1)".into())
        );
    }

    #[test]
    fn module_names_are_checked() {
        assert_eq!(
            module_of(Some(
                &json!({"name": "Task Store", "purpose": "keeps tasks"})
            ))
            .map(|m| m.0),
            Ok("task_store".to_string())
        );
        assert_eq!(
            module_of(Some(&json!("../../etc/passwd"))).map_err(|e| e.to_string()),
            Err(
                "input `module`: `../../etc/passwd` is not a module name (letters, digits, _)"
                    .into()
            )
        );
        assert_eq!(
            module_of(Some(&json!(7))).map_err(|e| e.to_string()),
            Err("input `module`: must be a name or {name, purpose}".into())
        );
    }
}
