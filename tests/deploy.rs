//! The deployment files in `deploy/`, read back: the compose file starts three cluster
//! nodes with distinct names on one SurrealDB server that keeps its data, and the
//! Kubernetes manifests run a StatefulSet behind a headless Service with readiness on
//! `/readyz`, the store's address and password from a Secret, and a disruption budget
//! that keeps a majority up. The Prometheus alert rules pass `promtool`'s checks and
//! their own unit tests.

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

fn documents(path: &str) -> Vec<Yaml> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path);
    let text = std::fs::read_to_string(&file).unwrap();
    YamlLoader::load_from_str(&text).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// `key` of a mapping, through `<<` merge keys (which yaml-rust2 does not resolve).
fn get<'a>(yaml: &'a Yaml, key: &str) -> &'a Yaml {
    let direct = &yaml[key];
    if !direct.is_badvalue() {
        return direct;
    }
    match &yaml["<<"] {
        Yaml::BadValue => direct,
        merged => get(merged, key),
    }
}

fn text(yaml: &Yaml) -> &str {
    yaml.as_str()
        .unwrap_or_else(|| panic!("not a string: {yaml:?}"))
}

#[test]
fn the_compose_file_starts_three_named_nodes_on_one_persistent_store() {
    let compose = documents("compose.yaml").remove(0);
    let services = &compose["services"];
    let store = &services["surrealdb"];
    let command: Vec<&str> = store["command"]
        .as_vec()
        .unwrap()
        .iter()
        .map(text)
        .collect();
    assert!(
        command.iter().any(|arg| arg.starts_with("surrealkv:")),
        "the store keeps its data: {command:?}"
    );
    let mut names = Vec::new();
    for node in ["node1", "node2", "node3"] {
        let service = &services[node];
        let env = get(service, "environment");
        assert_eq!(text(get(env, "TROUPE_CLUSTER__ENABLED")), "true", "{node}");
        assert_eq!(text(get(env, "TROUPE_STORE__URL")), "ws://surrealdb:8000");
        assert!(
            text(get(env, "TROUPE_AUTH__DIR")).starts_with("/keys"),
            "{node}"
        );
        let name = text(get(env, "TROUPE_CLUSTER__NODE_NAME")).to_string();
        assert!(
            text(get(env, "TROUPE_CLUSTER__COOKIE")).starts_with("${"),
            "the cookie comes from the environment: {node}"
        );
        assert_eq!(
            text(get(env, "TROUPE_CLUSTER__TLS__CERT_FILE")),
            format!("/certs/{name}.pem"),
            "each node presents its own certificate"
        );
        assert_eq!(
            text(get(env, "TROUPE_CLUSTER__TLS__CA_FILE")),
            "/certs/ca.pem"
        );
        names.push(name);
        let depends = get(service, "depends_on");
        assert_eq!(text(&depends["surrealdb"]["condition"]), "service_healthy");
        let probe: Vec<&str> = get(service, "healthcheck")["test"]
            .as_vec()
            .unwrap()
            .iter()
            .map(text)
            .collect();
        assert!(
            probe.iter().any(|arg| arg.ends_with("/readyz")),
            "{probe:?}"
        );
    }
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 3, "every node has its own name");
}

#[test]
fn the_kubernetes_manifests_make_a_stateful_set_behind_a_headless_service() {
    let documents = documents("kubernetes/troupe.yaml");
    let kind = |wanted: &str| {
        documents
            .iter()
            .find(|document| document["kind"].as_str() == Some(wanted))
            .unwrap_or_else(|| panic!("no {wanted}"))
    };
    let service = kind("Service");
    assert_eq!(text(&service["spec"]["clusterIP"]), "None", "headless");
    let set = kind("StatefulSet");
    assert_eq!(
        text(&set["spec"]["serviceName"]),
        text(&service["metadata"]["name"])
    );
    assert_eq!(set["spec"]["replicas"].as_i64(), Some(3));
    let labels = &set["spec"]["template"]["metadata"]["labels"];
    assert_eq!(set["spec"]["selector"]["matchLabels"], *labels);
    assert_eq!(service["spec"]["selector"], *labels);
    let container = &set["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        text(&container["readinessProbe"]["httpGet"]["path"]),
        "/readyz"
    );
    let env = container["env"].as_vec().unwrap();
    let variable = |name: &str| {
        env.iter()
            .find(|entry| entry["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(text(&variable("TROUPE_CLUSTER__ENABLED")["value"]), "true");
    assert_eq!(
        text(&variable("TROUPE_CLUSTER__NODE_NAME")["valueFrom"]["fieldRef"]["fieldPath"]),
        "metadata.name",
        "each node is named after its pod"
    );
    for secret in ["TROUPE_STORE__URL", "TROUPE_STORE__PASSWORD"] {
        let from = &variable(secret)["valueFrom"]["secretKeyRef"];
        assert_eq!(
            text(&from["name"]),
            "troupe-store",
            "{secret} comes from the Secret"
        );
    }
    assert_eq!(
        text(&variable("TROUPE_CLUSTER__COOKIE")["valueFrom"]["secretKeyRef"]["name"]),
        "troupe-cluster"
    );
    assert_eq!(
        text(&variable("TROUPE_CLUSTER__TLS__CERT_FILE")["value"]),
        "/tls/$(TROUPE_CLUSTER__NODE_NAME).pem",
        "each pod presents the certificate named after it"
    );
    let mounts = container["volumeMounts"].as_vec().unwrap();
    assert!(
        mounts
            .iter()
            .any(|mount| text(&mount["mountPath"]) == "/tls"),
        "{mounts:?}"
    );
    let budget = kind("PodDisruptionBudget");
    assert_eq!(
        budget["spec"]["minAvailable"].as_i64(),
        Some(2),
        "a majority of 3"
    );
    assert_eq!(budget["spec"]["selector"]["matchLabels"], *labels);
    let secret = documents_of_secret();
    assert_eq!(text(&secret["metadata"]["name"]), "troupe-store");
    assert!(text(&secret["stringData"]["url"]).starts_with("ws://"));
}

fn documents_of_secret() -> Yaml {
    documents("kubernetes/secret.example.yaml").remove(0)
}

/// `promtool` on `args`, run in `deploy/prometheus`: its output, asserting success.
fn promtool(args: &[&str]) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus");
    let output = std::process::Command::new("promtool")
        .args(args)
        .current_dir(&dir)
        .output()
        .expect("promtool is missing: run ./scripts/setup (it installs Debian's prometheus)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?}:\n{text}");
    text
}

/// The alert rules are valid Prometheus rules, and their unit tests (input series that
/// make every rule fire, and a healthy node on which none does) pass.
#[test]
fn the_alert_rules_are_valid_and_each_fires_on_its_trouble_only() {
    let checked = promtool(&["check", "rules", "alerts.yaml"]);
    assert!(checked.contains("SUCCESS: 14 rules found"), "{checked}");
    let rules = &documents("prometheus/alerts.yaml")[0]["groups"][0]["rules"];
    let names: Vec<&str> = rules
        .as_vec()
        .unwrap()
        .iter()
        .map(|rule| rule["alert"].as_str().unwrap())
        .collect();
    let tests = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/alerts_test.yaml"),
    )
    .unwrap();
    for name in names {
        assert_eq!(
            tests.matches(&format!("alertname: {name}")).count(),
            2,
            "{name} is tested firing once and quiet once"
        );
    }
    let tested = promtool(&["test", "rules", "alerts_test.yaml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}
