//! What a plugin's answers must look like.

use serde_json::Value;

use crate::agent::AgentOutput;

/// `initialize` answers `{"name": string, "version": string}`.
pub(super) fn check_initialize(info: &Value) -> Result<(), String> {
    let is_text = |key: &str| info.get(key).is_some_and(Value::is_string);
    if is_text("name") && is_text("version") {
        Ok(())
    } else {
        Err(format!(
            "must be {{\"name\": string, \"version\": string}}, got {}",
            short(info)
        ))
    }
}

/// `run` answers `{"outputs": {...}, "cost_usd"?: number >= 0}`.
pub(super) fn output(answer: Value) -> Result<AgentOutput, String> {
    let refuse = |answer: &Value| {
        format!(
            "`run` must answer {{\"outputs\": {{...}}, \"cost_usd\"?: number >= 0}}, got {}",
            short(answer)
        )
    };
    let Value::Object(mut answer) = answer else {
        return Err(refuse(&answer));
    };
    let cost_usd = match answer.get("cost_usd") {
        None | Some(Value::Null) => 0.0,
        Some(cost) => match cost.as_f64() {
            Some(cost) if cost.is_finite() && cost >= 0.0 => cost,
            _ => return Err(refuse(&Value::Object(answer))),
        },
    };
    match answer.remove("outputs") {
        Some(Value::Object(outputs)) => Ok(AgentOutput { outputs, cost_usd }),
        other => {
            if let Some(outputs) = other {
                answer.insert("outputs".into(), outputs);
            }
            Err(refuse(&Value::Object(answer)))
        }
    }
}

/// A value shown in an error message, cut short.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 200 {
        format!("{}…", text.chars().take(200).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_run_answer_needs_an_outputs_map_and_a_sane_cost() {
        let output = output(json!({"outputs": {"words": 3}, "cost_usd": 0.5})).unwrap();
        assert_eq!(output.outputs["words"], json!(3));
        assert_eq!(output.cost_usd, 0.5);
        assert_eq!(super::output(json!({"outputs": {}})).unwrap().cost_usd, 0.0);
        for bad in [
            json!([1]),
            json!({"outputs": 3}),
            json!({"result": {}}),
            json!({"outputs": {}, "cost_usd": -1}),
            json!({"outputs": {}, "cost_usd": "free"}),
        ] {
            let error = super::output(bad.clone()).unwrap_err();
            assert!(error.starts_with("`run` must answer"), "{bad}: {error}");
        }
        let huge = json!({"outputs": "x".repeat(10_000)});
        assert!(super::output(huge).unwrap_err().len() < 400);
    }

    #[test]
    fn initialize_must_name_the_plugin() {
        assert_eq!(
            check_initialize(&json!({"name": "wc", "version": "1"})),
            Ok(())
        );
        assert_eq!(
            check_initialize(&json!({"name": "wc"})),
            Err(r#"must be {"name": string, "version": string}, got {"name":"wc"}"#.into())
        );
    }
}
