//! `cargo run -p troupe-example-embed [TEXT]`: a node embedded in this program, with an
//! agent kind of its own, counts the words of TEXT through a workflow.

use troupe_config::Settings;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let text = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "the quick brown fox".into());
    let mut settings = Settings::defaults_with_store("mem://");
    settings.models.serve = false;
    match troupe_example_embed::count_words(settings, &text).await {
        Ok(run) => {
            let words = run
                .tasks
                .iter()
                .find(|task| task.id == "report")
                .and_then(|task| task.outputs.clone());
            println!(
                "run {} {}: {words:?}",
                run.record.run_id,
                run.record.status.as_str()
            );
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
