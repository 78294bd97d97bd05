//! Every rule the scanner knows, in one table: findings name their rule by id, and
//! SARIF's `tool.driver.rules` is generated from this list, so the two cannot drift.

use crate::finding::{Category, Severity};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    pub id: &'static str,
    pub name: &'static str,
    pub cwe: &'static str,
    pub severity: Severity,
    pub category: Category,
    pub message: &'static str,
    pub fix: &'static str,
}

const fn rule(
    id: &'static str,
    name: &'static str,
    cwe: &'static str,
    severity: Severity,
    category: Category,
    message: &'static str,
    fix: &'static str,
) -> Rule {
    Rule {
        id,
        name,
        cwe,
        severity,
        category,
        message,
        fix,
    }
}

use Category as C;
use Severity as S;

const SQL_MESSAGE: &str = "SQL statement built from strings with interpolated values";
const SQL_FIX: &str =
    "Pass values as bound parameters (placeholders) instead of formatting them into the query";
const CMD_MESSAGE: &str = "Shell command built from a non-literal value";
const CMD_FIX: &str =
    "Run the program directly with an argument list (no shell), and validate the inputs";
const PATH_MESSAGE: &str = "File path built from request input";
const PATH_FIX: &str =
    "Resolve the path, then check it stays inside the intended base directory (reject `..`)";
const HASH_MESSAGE: &str = "Weak hash algorithm (MD5/SHA-1)";
const HASH_FIX: &str =
    "Use SHA-256 or better; for passwords use a password hash (argon2, bcrypt, scrypt)";
const CIPHER_MESSAGE: &str = "Weak cipher or mode (DES, RC4 or ECB)";
const CIPHER_FIX: &str = "Use an authenticated cipher such as AES-GCM or ChaCha20-Poly1305";
const RANDOM_MESSAGE: &str = "Non-cryptographic random number generator used for a secret value";
const TLS_MESSAGE: &str = "TLS certificate verification disabled";
const TLS_FIX: &str = "Keep verification on; trust a private CA by adding its certificate instead";
const CORS_MESSAGE: &str = "CORS allows every origin";
const CORS_FIX: &str = "List the origins that may call this service instead of `*`";
const EVAL_MESSAGE: &str = "Code evaluated from a non-literal value";
const EVAL_FIX: &str =
    "Do not evaluate data as code; parse it (e.g. JSON) or dispatch on an allow-list";
const DESER_MESSAGE: &str = "Deserialisation of untrusted data can execute code";
const SECRET_FIX: &str = "Remove the secret from the repository, rotate it, and load it from the environment or a secret store";

pub static RULES: &[Rule] = &[
    rule(
        "secret.aws-access-key",
        "AwsAccessKey",
        "CWE-798",
        S::Critical,
        C::Secret,
        "AWS access key id",
        SECRET_FIX,
    ),
    rule(
        "secret.github-token",
        "GithubToken",
        "CWE-798",
        S::Critical,
        C::Secret,
        "GitHub token",
        SECRET_FIX,
    ),
    rule(
        "secret.slack-token",
        "SlackToken",
        "CWE-798",
        S::High,
        C::Secret,
        "Slack token",
        SECRET_FIX,
    ),
    rule(
        "secret.stripe-live-key",
        "StripeLiveKey",
        "CWE-798",
        S::Critical,
        C::Secret,
        "Stripe live secret key",
        SECRET_FIX,
    ),
    rule(
        "secret.google-api-key",
        "GoogleApiKey",
        "CWE-798",
        S::High,
        C::Secret,
        "Google API key",
        SECRET_FIX,
    ),
    rule(
        "secret.openai-api-key",
        "OpenaiApiKey",
        "CWE-798",
        S::Critical,
        C::Secret,
        "OpenAI API key",
        SECRET_FIX,
    ),
    rule(
        "secret.anthropic-api-key",
        "AnthropicApiKey",
        "CWE-798",
        S::Critical,
        C::Secret,
        "Anthropic API key",
        SECRET_FIX,
    ),
    rule(
        "secret.private-key",
        "PrivateKey",
        "CWE-321",
        S::Critical,
        C::Secret,
        "Private key",
        SECRET_FIX,
    ),
    rule(
        "secret.high-entropy-assignment",
        "HighEntropySecret",
        "CWE-798",
        S::High,
        C::Secret,
        "High-entropy value assigned to a secret-looking name",
        SECRET_FIX,
    ),
    rule(
        "py.sql-injection",
        "PythonSqlInjection",
        "CWE-89",
        S::High,
        C::Injection,
        SQL_MESSAGE,
        SQL_FIX,
    ),
    rule(
        "js.sql-injection",
        "JavascriptSqlInjection",
        "CWE-89",
        S::High,
        C::Injection,
        SQL_MESSAGE,
        SQL_FIX,
    ),
    rule(
        "go.sql-injection",
        "GoSqlInjection",
        "CWE-89",
        S::High,
        C::Injection,
        SQL_MESSAGE,
        SQL_FIX,
    ),
    rule(
        "rs.sql-injection",
        "RustSqlInjection",
        "CWE-89",
        S::High,
        C::Injection,
        SQL_MESSAGE,
        SQL_FIX,
    ),
    rule(
        "py.command-injection",
        "PythonCommandInjection",
        "CWE-78",
        S::Critical,
        C::Injection,
        CMD_MESSAGE,
        CMD_FIX,
    ),
    rule(
        "js.command-injection",
        "JavascriptCommandInjection",
        "CWE-78",
        S::Critical,
        C::Injection,
        CMD_MESSAGE,
        CMD_FIX,
    ),
    rule(
        "go.command-injection",
        "GoCommandInjection",
        "CWE-78",
        S::Critical,
        C::Injection,
        CMD_MESSAGE,
        CMD_FIX,
    ),
    rule(
        "rs.command-injection",
        "RustCommandInjection",
        "CWE-78",
        S::Critical,
        C::Injection,
        CMD_MESSAGE,
        CMD_FIX,
    ),
    rule(
        "sh.eval-injection",
        "ShellEval",
        "CWE-95",
        S::High,
        C::CodeExecution,
        "`eval` of an expanded variable",
        "Avoid `eval`; call the command directly with quoted arguments",
    ),
    rule(
        "py.path-traversal",
        "PythonPathTraversal",
        "CWE-22",
        S::High,
        C::PathTraversal,
        PATH_MESSAGE,
        PATH_FIX,
    ),
    rule(
        "js.path-traversal",
        "JavascriptPathTraversal",
        "CWE-22",
        S::High,
        C::PathTraversal,
        PATH_MESSAGE,
        PATH_FIX,
    ),
    rule(
        "go.path-traversal",
        "GoPathTraversal",
        "CWE-22",
        S::High,
        C::PathTraversal,
        PATH_MESSAGE,
        PATH_FIX,
    ),
    rule(
        "rs.path-traversal",
        "RustPathTraversal",
        "CWE-22",
        S::High,
        C::PathTraversal,
        PATH_MESSAGE,
        PATH_FIX,
    ),
    rule(
        "py.unsafe-deserialization",
        "PythonUnsafeDeserialization",
        "CWE-502",
        S::High,
        C::Deserialization,
        DESER_MESSAGE,
        "Use a data-only format (JSON) or `yaml.safe_load`; never unpickle untrusted bytes",
    ),
    rule(
        "js.unsafe-deserialization",
        "JavascriptUnsafeDeserialization",
        "CWE-502",
        S::High,
        C::Deserialization,
        DESER_MESSAGE,
        "Use `JSON.parse`; `node-serialize` evaluates functions in its input",
    ),
    rule(
        "py.eval",
        "PythonEval",
        "CWE-95",
        S::High,
        C::CodeExecution,
        EVAL_MESSAGE,
        EVAL_FIX,
    ),
    rule(
        "js.eval",
        "JavascriptEval",
        "CWE-95",
        S::High,
        C::CodeExecution,
        EVAL_MESSAGE,
        EVAL_FIX,
    ),
    rule(
        "py.weak-hash",
        "PythonWeakHash",
        "CWE-328",
        S::Medium,
        C::WeakCrypto,
        HASH_MESSAGE,
        HASH_FIX,
    ),
    rule(
        "js.weak-hash",
        "JavascriptWeakHash",
        "CWE-328",
        S::Medium,
        C::WeakCrypto,
        HASH_MESSAGE,
        HASH_FIX,
    ),
    rule(
        "go.weak-hash",
        "GoWeakHash",
        "CWE-328",
        S::Medium,
        C::WeakCrypto,
        HASH_MESSAGE,
        HASH_FIX,
    ),
    rule(
        "rs.weak-hash",
        "RustWeakHash",
        "CWE-328",
        S::Medium,
        C::WeakCrypto,
        HASH_MESSAGE,
        HASH_FIX,
    ),
    rule(
        "py.weak-cipher",
        "PythonWeakCipher",
        "CWE-327",
        S::High,
        C::WeakCrypto,
        CIPHER_MESSAGE,
        CIPHER_FIX,
    ),
    rule(
        "js.weak-cipher",
        "JavascriptWeakCipher",
        "CWE-327",
        S::High,
        C::WeakCrypto,
        CIPHER_MESSAGE,
        CIPHER_FIX,
    ),
    rule(
        "go.weak-cipher",
        "GoWeakCipher",
        "CWE-327",
        S::High,
        C::WeakCrypto,
        CIPHER_MESSAGE,
        CIPHER_FIX,
    ),
    rule(
        "py.insecure-random",
        "PythonInsecureRandom",
        "CWE-330",
        S::Medium,
        C::InsecureRandomness,
        RANDOM_MESSAGE,
        "Use `secrets.token_hex` / `secrets.choice`",
    ),
    rule(
        "js.insecure-random",
        "JavascriptInsecureRandom",
        "CWE-330",
        S::Medium,
        C::InsecureRandomness,
        RANDOM_MESSAGE,
        "Use `crypto.randomBytes` / `crypto.randomUUID`",
    ),
    rule(
        "go.insecure-random",
        "GoInsecureRandom",
        "CWE-330",
        S::Medium,
        C::InsecureRandomness,
        RANDOM_MESSAGE,
        "Use `crypto/rand`",
    ),
    rule(
        "py.tls-verification-disabled",
        "PythonTlsVerifyOff",
        "CWE-295",
        S::High,
        C::Tls,
        TLS_MESSAGE,
        TLS_FIX,
    ),
    rule(
        "js.tls-verification-disabled",
        "JavascriptTlsVerifyOff",
        "CWE-295",
        S::High,
        C::Tls,
        TLS_MESSAGE,
        TLS_FIX,
    ),
    rule(
        "go.tls-verification-disabled",
        "GoTlsVerifyOff",
        "CWE-295",
        S::High,
        C::Tls,
        TLS_MESSAGE,
        TLS_FIX,
    ),
    rule(
        "rs.tls-verification-disabled",
        "RustTlsVerifyOff",
        "CWE-295",
        S::High,
        C::Tls,
        TLS_MESSAGE,
        TLS_FIX,
    ),
    rule(
        "sh.tls-verification-disabled",
        "ShellTlsVerifyOff",
        "CWE-295",
        S::High,
        C::Tls,
        TLS_MESSAGE,
        TLS_FIX,
    ),
    rule(
        "py.debug-enabled",
        "PythonDebugEnabled",
        "CWE-489",
        S::Medium,
        C::Configuration,
        "Debug mode enabled",
        "Turn debug off outside development (read it from the environment, default off)",
    ),
    rule(
        "config.debug-enabled",
        "ConfigDebugEnabled",
        "CWE-489",
        S::Medium,
        C::Configuration,
        "Debug mode enabled in a configuration file",
        "Turn debug off outside development (read it from the environment, default off)",
    ),
    rule(
        "py.cors-wildcard",
        "PythonCorsWildcard",
        "CWE-942",
        S::Medium,
        C::Configuration,
        CORS_MESSAGE,
        CORS_FIX,
    ),
    rule(
        "js.cors-wildcard",
        "JavascriptCorsWildcard",
        "CWE-942",
        S::Medium,
        C::Configuration,
        CORS_MESSAGE,
        CORS_FIX,
    ),
    rule(
        "go.cors-wildcard",
        "GoCorsWildcard",
        "CWE-942",
        S::Medium,
        C::Configuration,
        CORS_MESSAGE,
        CORS_FIX,
    ),
    rule(
        "rs.cors-wildcard",
        "RustCorsWildcard",
        "CWE-942",
        S::Medium,
        C::Configuration,
        CORS_MESSAGE,
        CORS_FIX,
    ),
    rule(
        "config.cors-wildcard",
        "ConfigCorsWildcard",
        "CWE-942",
        S::Medium,
        C::Configuration,
        CORS_MESSAGE,
        CORS_FIX,
    ),
    rule(
        "dep.vulnerable-dependency",
        "VulnerableDependency",
        "CWE-1395",
        S::High,
        C::Dependency,
        "Dependency with a known vulnerability",
        "Upgrade to a fixed version",
    ),
];

/// The rule with this id. Every id used in the scanner's code is in `RULES` (a test
/// checks it), so callers may treat `None` as a bug, not as bad input.
pub fn rule_by_id(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|rule| rule.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_unique_and_prefixed() {
        let mut ids: Vec<&str> = RULES.iter().map(|rule| rule.id).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len(), "duplicate rule id");
        for rule in RULES {
            assert!(rule.id.contains('.'), "{} has no language prefix", rule.id);
            assert!(rule.cwe.starts_with("CWE-"), "{} has no CWE", rule.id);
        }
    }
}
