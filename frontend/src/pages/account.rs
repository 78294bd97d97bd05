//! The account: who is signed in, the open sessions (end any of them), API keys (create,
//! shown once; revoke) and the second factor (enrol with the QR code, confirm with a
//! first code, keep the recovery codes).

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::json;

use crate::api::{self, Method};
use crate::model::{ApiKey, ApiKeyCreated, Enrolment, Me, RecoveryCodes, Session};
use crate::view::{format, loaded};

#[component]
pub fn Account() -> impl IntoView {
    let changed = RwSignal::new(0_u64);
    let me = LocalResource::new(|| api::get::<Me>("/api/v1/auth/me"));
    let sessions = LocalResource::new(move || {
        changed.track();
        api::get::<Vec<Session>>("/api/v1/auth/sessions")
    });
    let keys = LocalResource::new(move || {
        changed.track();
        api::get::<Vec<ApiKey>>("/api/v1/auth/keys")
    });
    let message = RwSignal::new(None::<String>);
    let act = move |method: Method, path: String, body: Option<serde_json::Value>| {
        spawn_local(async move {
            match api::act(method, &path, body).await {
                Ok(()) => changed.update(|n| *n += 1),
                Err(error) => message.set(Some(error.to_string())),
            }
        });
    };
    view! {
        <h1>"Account"</h1>
        {move || message.get().map(|text| view! { <p class="note error" role="alert">{text}</p> })}
        <section class="panel glass" aria-labelledby="me-title">
            <h2 id="me-title">"Signed in as"</h2>
            {loaded(me, |me: Me| view! {
                <dl class="facts"><dt>"Email"</dt><dd data-testid="me">{me.email}</dd><dt>"Role"</dt><dd>{me.role}</dd></dl>
            })}
        </section>
        <section class="panel glass" aria-labelledby="sessions-title">
            <h2 id="sessions-title">"Sessions"</h2>
            {loaded(sessions, move |sessions: Vec<Session>| view! {
                <div class="table-scroll"><table class="table">
                    <thead><tr><th scope="col">"Device"</th><th scope="col">"Address"</th><th scope="col">"Signed in (UTC)"</th><th scope="col">"Last refresh"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th></tr></thead>
                    <tbody>{sessions.into_iter().map(|session| {
                        let path = format!("/api/v1/auth/sessions/{}", session.session_id);
                        view! {
                            <tr>
                                <td>{session.device.unwrap_or_else(|| "unknown".into())}{session.current.then_some(" (this one)")}</td>
                                <td>{session.client_ip.unwrap_or_default()}</td>
                                <td>{format::timestamp(session.created_at_ms)}</td>
                                <td>{format::timestamp(session.last_used_ms)}</td>
                                <td><button type="button" class="button ghost" on:click=move |_| act(Method::Delete, path.clone(), None)>"End"</button></td>
                            </tr>
                        }
                    }).collect_view()}</tbody>
                </table></div>
            })}
        </section>
        <Keys keys=keys act=act changed=changed/>
        <SecondFactor/>
    }
}

#[component]
fn Keys(
    keys: LocalResource<Result<Vec<ApiKey>, api::UiError>>,
    act: impl Fn(Method, String, Option<serde_json::Value>) + Copy + Send + Sync + 'static,
    changed: RwSignal<u64>,
) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let scopes = RwSignal::new(String::from("workflows.view"));
    let proof = RwSignal::new(String::new());
    let created = RwSignal::new(None::<Result<String, String>>);
    let create = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        spawn_local(async move {
            let scopes: Vec<String> = scopes
                .get_untracked()
                .split(',')
                .map(|scope| scope.trim().to_owned())
                .filter(|scope| !scope.is_empty())
                .collect();
            // The node takes the password or, with a second factor, the code.
            let typed = proof.get_untracked();
            let body = json!({
                "name": name.get_untracked(), "scopes": scopes, "password": typed, "code": typed,
            });
            proof.set(String::new());
            let result = api::post::<ApiKeyCreated>("/api/v1/auth/keys", &body).await;
            created.set(Some(
                result
                    .map(|made| made.key)
                    .map_err(|error| error.to_string()),
            ));
            changed.update(|n| *n += 1);
        });
    };
    view! {
        <section class="panel glass" aria-labelledby="keys-title">
            <h2 id="keys-title">"API keys"</h2>
            {loaded(keys, move |keys: Vec<ApiKey>| view! {
                <ul class="plain">{keys.into_iter().filter(|key| !key.revoked).map(|key| {
                    let path = format!("/api/v1/auth/keys/{}", key.key_id);
                    view! {
                        <li>
                            <code>{key.name}</code>" "{key.scopes.join(", ")}" "
                            <button type="button" class="button ghost" on:click=move |_| act(Method::Delete, path.clone(), None)>"Revoke"</button>
                        </li>
                    }
                }).collect_view()}</ul>
            })}
            <form class="inline" on:submit=create>
                <label>"New key's name"
                    <input type="text" required prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/>
                </label>
                <label>"Permissions (comma-separated, e.g. workflows.view, workflows.execute)"
                    <input type="text" required prop:value=move || scopes.get() on:input=move |ev| scopes.set(event_target_value(&ev))/>
                </label>
                <ProofField proof=proof/>
                <button type="submit" class="button">"Create key"</button>
            </form>
            {move || created.get().map(|result| match result {
                Ok(key) => view! { <p class="note ok" role="status">"Copy it now, it is shown once: " <code class="wrap">{key}</code></p> }.into_any(),
                Err(message) => view! { <p class="note error" role="alert">{message}</p> }.into_any(),
            })}
        </section>
    }
}

#[component]
fn SecondFactor() -> impl IntoView {
    let enrolment = RwSignal::new(None::<Enrolment>);
    let code = RwSignal::new(String::new());
    let recovery = RwSignal::new(None::<Vec<String>>);
    let error = RwSignal::new(None::<String>);
    let password = RwSignal::new(String::new());
    let start = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let body = json!({ "password": password.get_untracked() });
        password.set(String::new());
        spawn_local(async move {
            match api::post::<Enrolment>("/api/v1/auth/mfa/enrol", &body).await {
                Ok(started) => enrolment.set(Some(started)),
                Err(failure) => error.set(Some(failure.to_string())),
            }
        });
    };
    let confirm = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        spawn_local(async move {
            let body = json!({ "code": code.get_untracked() });
            match api::post::<RecoveryCodes>("/api/v1/auth/mfa/confirm", &body).await {
                Ok(codes) => {
                    recovery.set(Some(codes.recovery_codes));
                    enrolment.set(None);
                }
                Err(failure) => error.set(Some(failure.to_string())),
            }
        });
    };
    view! {
        <section class="panel glass" aria-labelledby="mfa-title">
            <h2 id="mfa-title">"Second factor"</h2>
            {move || match (enrolment.get(), recovery.get()) {
                (_, Some(codes)) => view! {
                    <p class="note ok" role="status">"The second factor is on. Keep these recovery codes; each works once, and they are shown only now."</p>
                    <ul class="codes">{codes.into_iter().map(|c| view! { <li><code>{c}</code></li> }).collect_view()}</ul>
                }.into_any(),
                (Some(started), None) => view! {
                    <p>"Scan the code with your authenticator app, or type the secret, then enter the first code it shows."</p>
                    // The SVG is drawn by this node (auth::mfa), not taken from the request.
                    <div class="qr" role="img" aria-label="QR code of the authenticator secret" inner_html=started.qr_svg></div>
                    <p>"Secret: " <code class="wrap">{started.secret}</code></p>
                    <form class="inline" on:submit=confirm>
                        <label>"First code"
                            <input type="text" inputmode="numeric" autocomplete="one-time-code" required
                                prop:value=move || code.get() on:input=move |ev| code.set(event_target_value(&ev))/>
                        </label>
                        <button type="submit" class="button primary">"Turn on"</button>
                    </form>
                }.into_any(),
                (None, None) => view! {
                    <p>"A code from an authenticator app, asked at every sign-in, keeps the account safe if the password leaks."</p>
                    <form class="inline" on:submit=start>
                        <label>"Your password"
                            <input type="password" autocomplete="current-password" required
                                prop:value=move || password.get() on:input=move |ev| password.set(event_target_value(&ev))/>
                        </label>
                        <button type="submit" class="button">"Set up a second factor"</button>
                    </form>
                }.into_any(),
            }}
            {move || error.get().map(|message| view! { <p class="note error" role="alert">{message}</p> })}
        </section>
    }
}

/// What a change to how the account is reached asks for again: the password, or a code
/// when the account has a second factor.
#[component]
fn ProofField(proof: RwSignal<String>) -> impl IntoView {
    view! {
        <label>"Your password (or authenticator code)"
            <input type="password" autocomplete="current-password" required
                prop:value=move || proof.get() on:input=move |ev| proof.set(event_target_value(&ev))/>
        </label>
    }
}
