//! Chat prompts rendered with the model's own template (`tokenizer.chat_template` in the
//! GGUF), by a real Jinja engine. Templates written for Python's Jinja often call string
//! methods (`.strip()`, `.startswith()`) and `raise_exception(...)`: both are provided.

use minijinja::{Environment, Error, ErrorKind, context};
use serde::{Deserialize, Serialize};

use crate::errors::InferenceError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: &str) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

const ROLES: [&str; 4] = ["system", "user", "assistant", "tool"];

pub struct ChatTemplate {
    environment: Environment<'static>,
}

impl ChatTemplate {
    /// Compiles `source`; a template that does not parse is refused here, not at the
    /// first request.
    pub fn new(source: &str) -> Result<Self, InferenceError> {
        let mut environment = Environment::new();
        environment
            .set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        environment.add_function(
            "raise_exception",
            |message: String| -> Result<String, Error> {
                Err(Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        environment
            .add_template_owned("chat", source.to_string())
            .map_err(|error| {
                InferenceError::InvalidRequest(format!(
                    "the model's chat template does not parse: {error}"
                ))
            })?;
        Ok(Self { environment })
    }

    /// The prompt text for `messages`; with `add_generation_prompt` it ends where the
    /// assistant's answer begins.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, InferenceError> {
        if messages.is_empty() {
            return Err(InferenceError::InvalidRequest(
                "a chat needs at least one message".into(),
            ));
        }
        if let Some(message) = messages
            .iter()
            .find(|message| !ROLES.contains(&message.role.as_str()))
        {
            return Err(InferenceError::InvalidRequest(format!(
                "unknown role `{}`; use one of {}",
                message.role,
                ROLES.join(", ")
            )));
        }
        let template = self
            .environment
            .get_template("chat")
            .map_err(|error| InferenceError::InvalidRequest(error.to_string()))?;
        template
            .render(
                context! { messages => messages, add_generation_prompt => add_generation_prompt },
            )
            .map_err(|error| {
                InferenceError::InvalidRequest(format!(
                    "the chat template refused these messages: {error}"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'].strip() + '<|im_end|>\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    #[test]
    fn renders_python_flavoured_jinja() {
        let template = ChatTemplate::new(CHATML).unwrap();
        let prompt = template
            .render(&[ChatMessage::new("user", "  hi  ")], true)
            .unwrap();
        assert_eq!(
            prompt,
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn templates_may_refuse_and_bad_input_is_named() {
        let strict = ChatTemplate::new("{% if messages[0]['role'] != 'user' %}{{ raise_exception('first message must be from the user') }}{% endif %}ok").unwrap();
        let error = strict
            .render(&[ChatMessage::new("assistant", "x")], false)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("first message must be from the user"),
            "{error}"
        );
        let error = strict
            .render(&[ChatMessage::new("robot", "x")], false)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "invalid request: unknown role `robot`; use one of system, user, assistant, tool"
        );
        assert_eq!(
            strict.render(&[], false).map_err(|e| e.to_string()),
            Err("invalid request: a chat needs at least one message".into())
        );
        assert_eq!(
            ChatTemplate::new("{% for %}").map(|_| ()).map_err(|e| e.to_string()),
            Err("invalid request: the model's chat template does not parse: syntax error: unexpected end of block, expected in (in chat:1)".into())
        );
    }
}
