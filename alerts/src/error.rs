//! What can go wrong reading metrics or sending a notification.

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("line {line} of the metrics text is not a sample: `{text}`")]
    Exposition { line: usize, text: String },
}
