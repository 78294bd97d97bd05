//! Authorisation through the router with `auth.required`: roles, project membership,
//! API key scopes, `separate_approver`, and ids guessed across projects.

use std::sync::Arc;

use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use super::*;
use troupe_security::auth::permissions::Role;

pub(crate) struct Team {
    pub(crate) app: Router,
    pub(crate) node: Arc<Node>,
}

pub(crate) const PASSWORD: &str = "a long enough password";

/// `text` as one percent-encoded path segment.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => char::from(b).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

impl Team {
    pub(crate) async fn new() -> Team {
        Self::with(|_| {}).await
    }

    /// A node with accounts whose settings `adjust` changed.
    pub(crate) async fn with(adjust: impl FnOnce(&mut troupe_config::Settings)) -> Team {
        let (app, node) = test_node::start(true, adjust).await;
        Team { app, node }
    }

    /// A user with `role` and an access token.
    pub(crate) async fn user(&self, email: &str, role: Role) -> String {
        let auth = self.node.auth();
        auth.create_user(email, role, PASSWORD, false)
            .await
            .unwrap();
        auth.login(email, PASSWORD, None, self.node.audit())
            .await
            .unwrap()
            .into_session()
            .unwrap()
            .access_token
    }

    pub(crate) async fn call(
        &self,
        token: &str,
        method: Method,
        uri: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"));
        let reply = test_node::send(&self.app, request, test_node::json_body(&body)).await;
        (reply.status, reply.body)
    }

    pub(crate) async fn get(&self, token: &str, uri: &str) -> (StatusCode, Value) {
        self.call(token, Method::GET, uri, Value::Null).await
    }

    pub(crate) async fn post(&self, token: &str, uri: &str, body: Value) -> (StatusCode, Value) {
        self.call(token, Method::POST, uri, body).await
    }

    async fn start(&self, token: &str, source: &str) -> String {
        let (status, created) = self
            .post(token, "/api/v1/workflows", json!({ "source": source }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["workflow_id"].as_str().unwrap();
        let (status, started) = self
            .post(token, &format!("/api/v1/workflows/{id}/runs"), json!({}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{started}");
        started["run_id"].as_str().unwrap().to_owned()
    }

    async fn wait_for_gate(&self, token: &str, run: &str) {
        for _ in 0..500 {
            let (_, approvals) = self.get(token, "/api/v1/approvals").await;
            if approvals
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["run_id"] == run)
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("run {run} never reached its gate");
    }
}

fn gated(project: &str) -> String {
    format!(
        "name: Release {project}\nproject: {project}\nseparate_approver: true\ntasks:\n  - {{ id: build, name: Build, agent: echo, inputs: {{ a: 1 }} }}\n  - {{ id: sign_off, name: Sign off, agent: human_review, depends_on: [build], requires_approval: true, inputs: {{ a: 1 }} }}\n"
    )
}

#[tokio::test]
async fn a_member_of_one_project_cannot_reach_another_by_guessing_ids() {
    let team = Team::new().await;
    let owner = team.user("owner@example.com", Role::OrgOwner).await;
    let ada = team.user("ada@example.com", Role::Developer).await;
    let bob = team.user("bob@example.com", Role::Developer).await;
    for project in ["shop", "bank"] {
        let (status, body) = team
            .post(&owner, "/api/v1/projects", json!({ "project_id": project }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for (project, user) in [("shop", "ada@example.com"), ("bank", "bob@example.com")] {
        let (status, body) = team
            .call(
                &owner,
                Method::PUT,
                &format!("/api/v1/projects/{project}/members/{user}"),
                json!({ "role": "developer" }),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    let run = team.start(&ada, &gated("shop")).await;
    team.wait_for_gate(&ada, &run).await;

    // Bob, of the bank, sees nothing of the shop: every guess answers 404.
    for uri in [
        format!("/api/v1/runs/{run}"),
        format!("/api/v1/runs/{run}/events"),
        "/api/v1/workflows/release-shop".to_string(),
        "/api/v1/projects/shop".to_string(),
    ] {
        let (status, body) = team.get(&bob, &uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {body}");
    }
    let (status, _) = team
        .post(&bob, &format!("/api/v1/runs/{run}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = team
        .post(&bob, "/api/v1/workflows/release-shop/runs", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = team
        .post(
            &bob,
            "/api/v1/workflows",
            json!({ "source": gated("shop") }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, runs) = team.get(&bob, "/api/v1/runs").await;
    assert_eq!(runs, json!([]));
    let (_, workflows) = team.get(&bob, "/api/v1/workflows").await;
    assert_eq!(workflows, json!([]));
    let (_, approvals) = team.get(&bob, "/api/v1/approvals").await;
    assert_eq!(approvals, json!([]));
    let (_, projects) = team.get(&bob, "/api/v1/projects").await;
    assert_eq!(projects.as_array().unwrap().len(), 1, "{projects}");
    let (status, _) = team
        .call(
            &bob,
            Method::PUT,
            "/api/v1/projects/shop/members/bob@example.com",
            json!({ "role": "project_owner" }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "bob cannot add himself to the shop"
    );
    let (status, _) = team
        .post(
            &bob,
            "/api/v1/memory/search",
            json!({ "project": "shop", "query": "prices" }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Ada sees her run, but a developer does not decide gates; the run goes on waiting.
    let (status, _) = team.get(&ada, &format!("/api/v1/runs/{run}")).await;
    assert_eq!(status, StatusCode::OK);
    let decide = format!("/api/v1/runs/{run}/tasks/sign_off/decision");
    let (status, body) = team
        .post(
            &ada,
            &decide,
            json!({ "decision": "approve", "approver": "ada" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.to_string().contains("workflows.approve"), "{body}");
    // Node-wide permissions follow the account role.
    let (status, _) = team.get(&ada, "/api/v1/audit").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = team.get(&owner, "/api/v1/audit").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_reviewer_approves_but_never_a_run_they_started_when_the_workflow_says_so() {
    let team = Team::new().await;
    let owner = team.user("owner@example.com", Role::OrgOwner).await;
    let dev = team.user("dev@example.com", Role::Developer).await;
    let rita = team.user("rita@example.com", Role::Viewer).await;
    team.post(&owner, "/api/v1/projects", json!({ "project_id": "shop" }))
        .await;
    for (user, role) in [
        ("dev@example.com", "developer"),
        ("rita@example.com", "reviewer"),
    ] {
        team.call(
            &owner,
            Method::PUT,
            &format!("/api/v1/projects/shop/members/{user}"),
            json!({ "role": role }),
        )
        .await;
    }
    // A membership cannot hand out an organisation-wide role.
    let (status, refused) = team
        .call(
            &owner,
            Method::PUT,
            "/api/v1/projects/shop/members/dev@example.com",
            json!({ "role": "super_admin" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused["error"]["message"],
        "role `super_admin` is not one of project_owner, developer, reviewer, viewer"
    );

    let run = team.start(&dev, &gated("shop")).await;
    team.wait_for_gate(&rita, &run).await;
    let decide = format!("/api/v1/runs/{run}/tasks/sign_off/decision");
    // Rita's body names someone else; she decides as herself all the same.
    let (status, body) = team
        .post(
            &rita,
            &decide,
            json!({ "decision": "approve", "approver": "dev@example.com" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, detail) = team.get(&rita, &format!("/api/v1/runs/{run}")).await;
    let sign_off = detail["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|task| task["id"] == "sign_off")
        .unwrap()
        .clone();
    assert_eq!(
        sign_off["outputs"]["approver"], "rita@example.com",
        "{sign_off:#}"
    );

    // Rita is a viewer outside the shop: she may not start runs in the default project.
    let (status, _) = team
        .post(
            &rita,
            "/api/v1/workflows",
            json!({ "source": gated("default") }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // In the shop she starts one, and may not approve it: separate_approver.
    let own = team.start(&rita, &gated("shop")).await;
    team.wait_for_gate(&rita, &own).await;
    let (status, body) = team
        .post(
            &rita,
            &format!("/api/v1/runs/{own}/tasks/sign_off/decision"),
            json!({ "decision": "approve", "approver": "someone" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "approval_refused", "{body}");
}

#[tokio::test]
async fn an_api_key_does_only_what_its_scopes_and_projects_allow() {
    let team = Team::new().await;
    let owner = team.user("owner@example.com", Role::OrgOwner).await;
    for project in ["shop", "bank"] {
        team.post(&owner, "/api/v1/projects", json!({ "project_id": project }))
            .await;
    }
    let shop_run = team.start(&owner, &gated("shop")).await;
    let bank_run = team.start(&owner, &gated("bank")).await;
    let (status, created) = team
        .post(
            &owner,
            "/api/v1/auth/keys",
            json!({ "name": "dashboard", "scopes": ["workflows.view"], "projects": ["shop"], "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap();
    let (status, _) = team.get(key, &format!("/api/v1/runs/{shop_run}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = team.get(key, &format!("/api/v1/runs/{bank_run}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the key names only the shop");
    let (status, _) = team
        .post(key, &format!("/api/v1/runs/{shop_run}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the key may only view");
    let (status, _) = team.get(key, "/api/v1/audit").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the owner may read the audit; the key may not"
    );
    let (_, runs) = team.get(key, "/api/v1/runs").await;
    let ids: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|run| run["run_id"].as_str())
        .collect();
    assert_eq!(ids, vec![shop_run.as_str()]);
}

/// `/metrics` is for who holds `metrics.read`: an organisation owner, or a key scoped to
/// it (what a Prometheus server scrapes with); a developer is refused.
#[tokio::test]
async fn metrics_are_scraped_only_with_metrics_read() {
    let team = Team::new().await;
    let owner = team.user("owner@example.com", Role::OrgOwner).await;
    let developer = team.user("dev@example.com", Role::Developer).await;
    let (status, _) = team.get(&developer, "/metrics").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, created) = team
        .post(
            &owner,
            "/api/v1/auth/keys",
            json!({ "name": "prometheus", "scopes": ["metrics.read"], "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap();
    let (status, text) = team.get(key, "/metrics").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let text = text.as_str().unwrap();
    assert!(
        text.contains("troupe_build_info{version=\"0.1.0\"} 1"),
        "{text}"
    );
    // The refusal is counted under its route, as every request is.
    let refused = r#"troupe_http_requests_total{method="GET",route="/metrics",status="403"} 1"#;
    assert!(text.contains(refused), "{text}");
    let (status, _) = team.get(key, "/api/v1/runs").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the key may only scrape");
}

#[test]
fn every_route_of_the_api_document_declares_what_it_needs() {
    let declared = crate::routes::declare();
    let document = serde_json::to_value(crate::routes::document().as_ref()).unwrap();
    let mut documented = 0;
    for (path, operations) in document["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            assert!(
                declared.table.needs(&method, path).is_some(),
                "{method} {path} is in the document but not in the route table"
            );
            documented += 1;
        }
    }
    assert!(documented >= 46, "{documented} operations documented");
}

#[tokio::test]
async fn the_account_routes_show_sessions_and_start_a_second_factor() {
    let team = Team::new().await;
    let ada = team.user("ada@example.com", Role::Viewer).await;
    let (status, sessions) = team.get(&ada, "/api/v1/auth/sessions").await;
    assert_eq!(status, StatusCode::OK, "{sessions}");
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    assert_eq!(sessions[0]["current"], true, "{sessions}");
    let (status, enrolment) = team
        .post(
            &ada,
            "/api/v1/auth/mfa/enrol",
            json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{enrolment}");
    assert!(enrolment["qr_svg"].as_str().unwrap().starts_with("<svg"));
    assert!(
        enrolment["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let (status, body) = team
        .post(&ada, "/api/v1/auth/mfa/confirm", json!({ "code": "12345" }))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let id = sessions[0]["session_id"].as_str().unwrap();
    let (status, _) = team
        .call(
            &ada,
            Method::DELETE,
            &format!("/api/v1/auth/sessions/{id}"),
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = team.get(&ada, "/api/v1/auth/sessions").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the session it ended was its own"
    );
    let (status, body) = team.get("not-a-token", "/api/v1/auth/sessions").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn accounts_are_made_over_http_by_those_who_manage_users_and_never_above_them() {
    let team = Team::new().await;
    let owner = team.user("owner@example.com", Role::OrgOwner).await;
    let dev = team.user("dev@example.com", Role::Developer).await;
    let (status, created) = team
        .post(
            &owner,
            "/api/v1/users",
            json!({ "email": "rita@example.com", "role": "reviewer" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let one_time = created["one_time_password"].as_str().unwrap();
    let pair = team
        .node
        .auth()
        .login("rita@example.com", one_time, None, team.node.audit())
        .await
        .unwrap()
        .into_session()
        .unwrap();
    assert!(pair.password_change_required);
    let (status, _) = team
        .post(
            &owner,
            "/api/v1/users",
            json!({ "email": "boss@example.com", "role": "super_admin" }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an org owner made a super admin"
    );
    let (status, _) = team
        .post(&dev, "/api/v1/users", json!({ "email": "x@example.com" }))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = team
        .post(
            &owner,
            "/api/v1/users",
            json!({ "email": "x'); DELETE user; --@example.com\" OR 1=1", "role": "viewer" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "not an email address");
    let (status, refused) = team
        .post(
            &owner,
            "/api/v1/users",
            json!({ "email": "x@example.com", "role": "emperor" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("unknown variant `emperor`, expected one of `viewer`"),
        "the refusal names the role and the choices: {refused}"
    );
    let (_, users) = team.get(&owner, "/api/v1/users").await;
    assert_eq!(
        users.as_array().unwrap().len(),
        4,
        "the bootstrap admin and three: {users}"
    );
    let rita = created["user"]["user_id"].as_str().unwrap();
    let (status, _) = team
        .post(&owner, &format!("/api/v1/users/{rita}/disable"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = team.get(&pair.access_token, "/api/v1/auth/me").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a disabled user's session ended"
    );
}

#[tokio::test]
async fn a_cached_caller_loses_access_the_moment_it_is_taken_away() {
    let team = Team::new().await;
    let owner = team.user("owner@example.com", Role::OrgOwner).await;
    let ada = team.user("ada@example.com", Role::Developer).await;
    team.post(&owner, "/api/v1/projects", json!({ "project_id": "shop" }))
        .await;
    let member = "/api/v1/projects/shop/members/ada@example.com";
    team.call(&owner, Method::PUT, member, json!({ "role": "developer" }))
        .await;
    let run = team.start(&owner, &gated("shop")).await;
    let (status, created) = team
        .post(
            &ada,
            "/api/v1/auth/keys",
            json!({ "name": "ci", "scopes": ["workflows.view"], "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        assert_eq!(
            team.get(&ada, &format!("/api/v1/runs/{run}")).await.0,
            StatusCode::OK
        );
        assert_eq!(
            team.get(&key, &format!("/api/v1/runs/{run}")).await.0,
            StatusCode::OK
        );
    }
    team.call(&owner, Method::DELETE, member, Value::Null).await;
    assert_eq!(
        team.get(&ada, &format!("/api/v1/runs/{run}")).await.0,
        StatusCode::NOT_FOUND,
        "a removed member still saw the project"
    );
    let key_id = created["key_id"].as_str().unwrap();
    team.call(
        &ada,
        Method::DELETE,
        &format!("/api/v1/auth/keys/{key_id}"),
        Value::Null,
    )
    .await;
    assert_eq!(
        team.get(&key, "/api/v1/runs").await.0,
        StatusCode::UNAUTHORIZED,
        "a revoked key still passed"
    );
    let users = team.node.store().users().await.unwrap();
    let ada_id = &users
        .iter()
        .find(|u| u.email == "ada@example.com")
        .unwrap()
        .user_id;
    team.post(
        &owner,
        &format!("/api/v1/users/{ada_id}/disable"),
        json!({}),
    )
    .await;
    assert_eq!(
        team.get(&ada, "/api/v1/runs").await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// Carl (acme) reads acme's audit entries (its people's), never the default
/// organisation's or the node's own; the default organisation's owner never acme's.
async fn audit_stays_in_its_organisation(team: &Team, carl: &str, owner: &str) {
    let (status, entries) = team.get(carl, "/api/v1/audit").await;
    assert_eq!(status, StatusCode::OK, "{entries}");
    let entries = entries.as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|entry| entry["action"] == "run.start" && entry["actor"] == "carl@acme.example"),
        "{entries:?}"
    );
    assert!(
        entries
            .iter()
            .all(|entry| entry["actor"] == "carl@acme.example"),
        "acme read another organisation's audit entries: {entries:?}"
    );
    let (_, all) = team.get(owner, "/api/v1/audit").await;
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|entry| entry["actor"] != "carl@acme.example"),
        "the default organisation read acme's entries"
    );
}

/// Model calls billed to acme's `rockets` and to the default organisation's `shop`:
/// each owner's cost report holds its own projects' calls only.
async fn costs_stay_in_their_organisation(team: &Team, carl: &str, owner: &str) {
    let call = troupe_inference::providers::CallRecord {
        provider: "cloud".into(),
        model: "m".into(),
        local: false,
        task_type: "chat".into(),
        agent: None,
        tokens_in: 10,
        tokens_out: 5,
        latency_ms: 1,
        cost_usd: 0.25,
        baseline_usd: 0.5,
        quality: None,
        escalated: false,
        served: true,
        error: None,
    };
    for project in ["rockets", "shop"] {
        let at = troupe_store::clock::now_ms();
        team.node
            .record_calls(project, at, &project.into(), std::slice::from_ref(&call))
            .await
            .unwrap();
    }
    for (token, own, other) in [(carl, "rockets", "shop"), (owner, "shop", "rockets")] {
        let (status, report) = team.get(token, "/api/v1/costs?days=1").await;
        assert_eq!(status, StatusCode::OK, "{report}");
        let projects: Vec<&str> = report["by_project"]
            .as_array()
            .unwrap()
            .iter()
            .map(|line| line["key"].as_str().unwrap())
            .collect();
        assert!(
            projects.contains(&own) && !projects.contains(&other),
            "{own}'s owner sees {projects:?}"
        );
        assert_eq!(report["total"]["cost_usd"], 0.25, "{report}");
    }
}

#[tokio::test]
async fn organisations_do_not_see_each_others_projects_people_or_default_work() {
    let team = Team::new().await;
    let owner = team.user("owner@example.com", Role::OrgOwner).await;
    let auth = team.node.auth();
    auth.create_user_in("acme", "carl@acme.example", Role::OrgOwner, PASSWORD, false)
        .await
        .unwrap();
    let carl = auth
        .login("carl@acme.example", PASSWORD, None, team.node.audit())
        .await
        .unwrap()
        .into_session()
        .unwrap()
        .access_token;
    let (status, rockets) = team
        .post(
            &carl,
            "/api/v1/projects",
            json!({ "project_id": "rockets", "org": "default" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rockets}");
    assert_eq!(
        rockets["org"], "acme",
        "an org owner chose another organisation"
    );
    let rocket_run = team.start(&carl, &gated("rockets")).await;
    team.post(&owner, "/api/v1/projects", json!({ "project_id": "shop" }))
        .await;
    let default_run = team.start(&owner, &gated("default")).await;

    // Each organisation's owner sees its own work only.
    let (status, _) = team.get(&owner, "/api/v1/projects/rockets").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = team
        .get(&owner, &format!("/api/v1/runs/{rocket_run}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = team
        .get(&carl, &format!("/api/v1/runs/{default_run}"))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "acme saw the default organisation's run"
    );
    let (_, workflows) = team.get(&carl, "/api/v1/workflows").await;
    let ids: Vec<&str> = workflows
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["workflow_id"].as_str())
        .collect();
    assert_eq!(ids, ["release-rockets"], "{workflows}");
    let (_, people) = team.get(&carl, "/api/v1/users").await;
    assert!(
        people
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["org"] == "acme"),
        "{people}"
    );
    // Accounts and memberships stay within an organisation.
    let (_, created) = team
        .post(
            &owner,
            "/api/v1/users",
            json!({ "email": "eve@example.com", "org": "acme" }),
        )
        .await;
    assert_eq!(created["user"]["org"], "default", "{created}");
    let (status, body) = team
        .call(
            &owner,
            Method::PUT,
            "/api/v1/projects/shop/members/carl@acme.example",
            json!({ "role": "viewer" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    audit_stays_in_its_organisation(&team, &carl, &owner).await;
    costs_stay_in_their_organisation(&team, &carl, &owner).await;
    let users = team.node.store().users().await.unwrap();
    let carl_id = &users.iter().find(|u| u.org == "acme").unwrap().user_id;
    let (status, _) = team
        .post(
            &owner,
            &format!("/api/v1/users/{carl_id}/disable"),
            json!({}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another organisation's owner disabled carl"
    );
}

#[tokio::test]
async fn surrealql_in_every_string_field_is_data_never_a_query() {
    let team = Team::new().await;
    let owner = team.user("owner@example.com", Role::OrgOwner).await;
    let hostile = [
        "'; DELETE user; --",
        "\"; REMOVE TABLE project; --",
        "}) RETURN NONE; DELETE api_key; ({",
        "user:⟨owner⟩",
        "$auth.id",
        "a` OR 1=1 `b",
        "\\\\'); DEFINE USER x ON ROOT PASSWORD 'p' ROLES OWNER; --",
    ];
    for (n, text) in hostile.iter().enumerate() {
        let project_id = format!("p{n}");
        let (status, project) = team
            .post(
                &owner,
                "/api/v1/projects",
                json!({ "project_id": project_id, "name": text }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{project}");
        let (_, read) = team
            .get(&owner, &format!("/api/v1/projects/{project_id}"))
            .await;
        assert_eq!(read["name"], *text, "the name did not come back as written");
        let (status, _) = team
            .post(&owner, "/api/v1/projects", json!({ "project_id": text }))
            .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{text} taken as a project id"
        );
        let (status, key) = team
            .post(
                &owner,
                "/api/v1/auth/keys",
                json!({ "name": text, "scopes": ["workflows.view"], "password": PASSWORD }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{key}");
        assert_eq!(key["name"], *text);
        let (status, _) = team
            .post(
                &owner,
                "/api/v1/users",
                json!({ "email": text, "role": "viewer" }),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text} taken as an email");
        let (status, _) = team
            .call(
                &owner,
                Method::PUT,
                &format!("/api/v1/projects/{project_id}/members/{}", encode(text)),
                json!({ "role": text }),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let source = format!(
            "id: wf{n}\nname: {}\nproject: {project_id}\ntasks:\n  - {{ id: a, name: A, agent: echo, inputs: {{ text: {} }} }}\n",
            serde_json::to_string(text).unwrap(),
            serde_json::to_string(text).unwrap()
        );
        let (status, created) = team
            .post(&owner, "/api/v1/workflows", json!({ "source": source }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let (_, workflow) = team.get(&owner, &format!("/api/v1/workflows/wf{n}")).await;
        assert_eq!(workflow["versions"][0]["name"], *text, "{workflow}");
        let (status, _) = team
            .get(&owner, &format!("/api/v1/runs/{}", encode(text)))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    // Every table is whole: the owner still signs in, every project and key is there.
    let (_, projects) = team.get(&owner, "/api/v1/projects").await;
    assert_eq!(projects.as_array().unwrap().len(), hostile.len());
    let (_, keys) = team.get(&owner, "/api/v1/auth/keys").await;
    assert_eq!(keys.as_array().unwrap().len(), hostile.len());
    let (status, _) = team.get(&owner, "/api/v1/auth/me").await;
    assert_eq!(status, StatusCode::OK);
    let (_, users) = team.get(&owner, "/api/v1/users").await;
    assert_eq!(
        users.as_array().unwrap().len(),
        2,
        "the bootstrap admin and the owner"
    );
}

const READ_THE_KEYS: &str = "name: Exfiltrate\ntasks:\n  - { id: steal, name: Steal, agent: shell, inputs: { command: \"cat .troupe/data-auth/jwt.key\" } }\n";

/// The attack: a developer saves a workflow whose `shell` task reads the node's token
/// signing key (to forge a super admin's token). Code that is not ours needs a grant its
/// project does not have by default, and only `agents.configure` gives it.
#[tokio::test]
async fn a_developer_cannot_run_shell_commands_until_an_owner_grants_them() {
    let team = Team::new().await;
    let dev = team.user("dev@example.com", Role::Developer).await;
    let owner = team.user("owner@example.com", Role::ProjectOwner).await;
    let (status, refused) = team
        .post(
            &dev,
            "/api/v1/workflows",
            json!({ "source": READ_THE_KEYS }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["error"]["code"], "kind_not_allowed");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`shell`") && message.contains("troupe projects allow default shell"),
        "{message}"
    );

    let grant = json!({ "allowed_kinds": ["shell"] });
    let policy = "/api/v1/projects/default/policy";
    let (status, _) = team.call(&dev, Method::PUT, policy, grant.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a developer may not grant");
    let (status, granted) = team.call(&owner, Method::PUT, policy, grant).await;
    assert_eq!(status, StatusCode::OK, "{granted}");
    assert_eq!(granted["allowed_kinds"], json!(["shell"]));
    let (status, created) = team
        .post(
            &dev,
            "/api/v1/workflows",
            json!({ "source": READ_THE_KEYS }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");

    // Withdrawn after the save: the saved version no longer starts.
    let none = json!({ "allowed_kinds": [] });
    let (status, _) = team.call(&owner, Method::PUT, policy, none).await;
    assert_eq!(status, StatusCode::OK);
    let id = created["workflow_id"].as_str().unwrap();
    let (status, refused) = team
        .post(&dev, &format!("/api/v1/workflows/{id}/runs"), json!({}))
        .await;
    assert_eq!(
        (status, refused["error"]["code"].clone()),
        (StatusCode::FORBIDDEN, json!("kind_not_allowed"))
    );
    let (status, typo) = team
        .call(
            &owner,
            Method::PUT,
            policy,
            json!({ "allowed_kinds": ["shel"] }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        typo["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`shel` is not an agent kind")
    );
}

/// A release workflow whose deploy is gated (or not) and approved by a second person
/// (or not).
fn release(gate: bool, separate: bool) -> String {
    format!(
        "name: Release\nid: release\nseparate_approver: {separate}\ntasks:\n  - {{ id: deploy, \
         name: Deploy, agent: deployment_agent, requires_approval: {gate}, inputs: {{ \
         repository: ., dry_run: true }} }}\n"
    )
}

/// The attack: the project's owner requires four eyes on deploys, and a developer
/// pushes a version of the release workflow without the gate (or with a gate the
/// developer could approve alone), or starts a version saved before the rule.
#[tokio::test]
async fn a_gate_the_project_requires_cannot_be_left_out_of_any_version() {
    let team = Team::new().await;
    let dev = team.user("dev@example.com", Role::Developer).await;
    let owner = team.user("owner@example.com", Role::ProjectOwner).await;
    let (status, old) = team
        .post(
            &dev,
            "/api/v1/workflows",
            json!({ "source": release(false, false) }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{old}");

    let policy = "/api/v1/projects/default/policy";
    let gate = json!({ "gated_kinds": ["deployment_agent"] });
    let (status, _) = team.call(&dev, Method::PUT, policy, gate.clone()).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a developer may not change the policy"
    );
    let (status, gated) = team.call(&owner, Method::PUT, policy, gate).await;
    assert_eq!(status, StatusCode::OK, "{gated}");
    assert_eq!(gated["gated_kinds"], json!(["deployment_agent"]));

    let refusal = |body: &Value| {
        assert_eq!(body["error"]["code"], "gate_required", "{body}");
        body["error"]["message"].as_str().unwrap().to_string()
    };
    let (status, body) = team
        .post(&dev, "/api/v1/workflows/release/runs", json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the version saved before the rule"
    );
    assert!(refusal(&body).contains("`requires_approval: true` on the task"));
    for (gate, separate, missing) in [
        (false, true, "`requires_approval: true` on the task"),
        (true, false, "`separate_approver: true` on the workflow"),
    ] {
        let (status, body) = team
            .post(
                &dev,
                "/api/v1/workflows",
                json!({ "source": release(gate, separate) }),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let message = refusal(&body);
        assert!(
            message.contains("task `deploy`") && message.contains(missing),
            "{message}"
        );
    }
    let (status, saved) = team
        .post(
            &dev,
            "/api/v1/workflows",
            json!({ "source": release(true, true) }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{saved}");
    let (status, run) = team
        .post(&dev, "/api/v1/workflows/release/runs", json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");

    // Withdrawing the rule keeps the grants; it too is the owner's alone.
    let (status, policy) = team
        .call(&owner, Method::PUT, policy, json!({ "gated_kinds": [] }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(policy["gated_kinds"], json!([]));
}

/// The attacks: an org owner minted another org owner, and disabled a super admin of
/// its organisation. Accounts are managed only below the manager's own role.
#[tokio::test]
async fn an_org_owner_manages_only_roles_below_its_own() {
    let team = Team::new().await;
    let owner = team.user("owner@example.com", Role::OrgOwner).await;
    let (status, refused) = team
        .post(
            &owner,
            "/api/v1/users",
            json!({ "email": "twin@example.com", "role": "org_owner" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only roles below your own")
    );
    let (status, made) = team
        .post(
            &owner,
            "/api/v1/users",
            json!({ "email": "lead@example.com", "role": "project_owner" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");

    team.user("root@example.com", Role::SuperAdmin).await;
    let root = team
        .node
        .store()
        .user_by_email("root@example.com")
        .await
        .unwrap()
        .unwrap();
    let path = format!("/api/v1/users/{}/disable", root.user_id);
    let (status, refused) = team.post(&owner, &path, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let lead = made["user"]["user_id"].as_str().unwrap();
    let (status, _) = team
        .post(&owner, &format!("/api/v1/users/{lead}/disable"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

/// An event stream opened by `token` on `address`.
async fn open_stream(
    address: std::net::SocketAddr,
    token: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    tokio_tungstenite::tungstenite::Error,
> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{address}/api/v1/events")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

/// The attacks: a stream opened before its key was revoked keeps delivering events, and
/// one caller opens sockets without end. The revoked key's stream is closed (1008)
/// within a few seconds; a caller's seventeenth stream is refused.
#[tokio::test]
async fn an_event_stream_ends_with_its_callers_access_and_streams_are_capped() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let team = Team::new().await;
    let ada = team.user("ada@example.com", Role::Developer).await;
    let (_, created) = team
        .post(
            &ada,
            "/api/v1/auth/keys",
            json!({ "name": "watcher", "scopes": ["workflows.view"], "password": PASSWORD }),
        )
        .await;
    let key = created["key"].as_str().unwrap().to_owned();
    let address = test_node::serve(team.app.clone()).await;
    let mut stream = open_stream(address, &key).await.expect("the key may watch");
    // Past the stream's first check, so that only a later one can see the revocation.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let key_id = created["key_id"].as_str().unwrap();
    team.call(
        &ada,
        Method::DELETE,
        &format!("/api/v1/auth/keys/{key_id}"),
        Value::Null,
    )
    .await;
    let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match stream.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("the revoked key's stream was still open after 10 s");
    assert_eq!(closed, Some(1008));

    let mut open = Vec::new();
    for _ in 0..crate::events_ws::MAX_SOCKETS_PER_CALLER {
        open.push(open_stream(address, &ada).await.expect("within the cap"));
    }
    match open_stream(address, &ada).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
        }
        other => panic!("a seventeenth stream was opened: {:?}", other.map(|_| ())),
    }
    drop(open.pop());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        open_stream(address, &ada).await.is_ok(),
        "a closed stream frees its place"
    );
}
