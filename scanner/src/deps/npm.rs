//! `package-lock.json`: version 1's nested `dependencies`, versions 2 and 3's flat
//! `packages` keyed by `node_modules/...` path.

use serde_json::Value;

use super::Dependency;

/// Nesting in a v1 lockfile mirrors `node_modules`; real trees are far shallower.
const MAX_DEPTH: usize = 64;

pub fn parse(file: &str, src: &str) -> Result<Vec<Dependency>, String> {
    let lock: Value =
        serde_json::from_str(src).map_err(|error| format!("not valid JSON: {error}"))?;
    let mut found = Vec::new();
    if let Some(packages) = lock.get("packages").and_then(Value::as_object) {
        for (path, package) in packages {
            // The root package is the key ""; links have no version of their own.
            let Some(name) = path.rsplit_once("node_modules/").map(|(_, name)| name) else {
                continue;
            };
            if let Some(version) = package.get("version").and_then(Value::as_str) {
                found.push(dependency(file, name, version));
            }
        }
    } else if let Some(dependencies) = lock.get("dependencies") {
        collect_v1(file, dependencies, 0, &mut found);
    } else {
        return Err("neither `packages` nor `dependencies`; is this an npm lockfile?".into());
    }
    Ok(found)
}

fn collect_v1(file: &str, dependencies: &Value, depth: usize, found: &mut Vec<Dependency>) {
    let Some(dependencies) = dependencies.as_object().filter(|_| depth < MAX_DEPTH) else {
        return;
    };
    for (name, entry) in dependencies {
        if let Some(version) = entry.get("version").and_then(Value::as_str) {
            found.push(dependency(file, name, version));
        }
        if let Some(nested) = entry.get("dependencies") {
            collect_v1(file, nested, depth + 1, found);
        }
    }
}

fn dependency(file: &str, name: &str, version: &str) -> Dependency {
    Dependency {
        ecosystem: "npm",
        name: name.to_string(),
        version: version.to_string(),
        file: file.to_string(),
        line: 0,
    }
}
