//! Sign in: a password, then a code from the authenticator when the account has one, and
//! a new password when the first, one-time one was used.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::json;

use crate::api::{self, Method};
use crate::model::SignInAnswer;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Password,
    Code { mfa_token: String },
    NewPassword { current: String },
}

#[component]
pub fn SignIn() -> impl IntoView {
    let step = RwSignal::new(Step::Password);
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let code = RwSignal::new(String::new());
    let new_password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

    let signed_in = move |answer: SignInAnswer, current: String| {
        if answer.mfa_required {
            step.set(Step::Code {
                mfa_token: answer.mfa_token.unwrap_or_default(),
            });
        } else if answer.password_change_required {
            step.set(Step::NewPassword { current });
        } else if answer.signed_in {
            go_home(answer.mfa_enrolment_required);
        }
    };
    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        busy.set(true);
        error.set(None);
        let current = step.get_untracked();
        spawn_local(async move {
            let outcome = match current {
                Step::Password => {
                    let body = json!({ "email": email.get_untracked(), "password": password.get_untracked() });
                    api::post::<SignInAnswer>("/api/v1/auth/browser/login", &body)
                        .await
                        .map(|answer| signed_in(answer, password.get_untracked()))
                }
                Step::Code { mfa_token } => {
                    let body = json!({ "mfa_token": mfa_token, "code": code.get_untracked() });
                    api::post::<SignInAnswer>("/api/v1/auth/browser/mfa", &body)
                        .await
                        .map(|answer| signed_in(answer, String::new()))
                }
                Step::NewPassword { current } => {
                    // Changing the password ends every session, this one too: sign in again.
                    let fresh = new_password.get_untracked();
                    let body = json!({ "current_password": current, "new_password": fresh });
                    let login = json!({ "email": email.get_untracked(), "password": fresh });
                    match api::act(Method::Post, "/api/v1/auth/password", Some(body)).await {
                        Ok(()) => api::post::<SignInAnswer>("/api/v1/auth/browser/login", &login)
                            .await
                            .map(|answer| signed_in(answer, fresh)),
                        Err(failure) => Err(failure),
                    }
                }
            };
            if let Err(failure) = outcome {
                error.set(Some(failure.to_string()));
            }
            busy.set(false);
        });
    };

    view! {
        <section class="panel glass narrow" aria-labelledby="sign-in-title">
            <h1 id="sign-in-title">"Sign in"</h1>
            <form on:submit=submit class="stack" data-testid="sign-in">
                {move || match step.get() {
                    Step::Password => view! {
                        <label>"Email"
                            <input type="email" name="email" autocomplete="username" required
                                prop:value=move || email.get()
                                on:input=move |ev| email.set(event_target_value(&ev))/>
                        </label>
                        <label>"Password"
                            <input type="password" name="password" autocomplete="current-password" required
                                prop:value=move || password.get()
                                on:input=move |ev| password.set(event_target_value(&ev))/>
                        </label>
                    }.into_any(),
                    Step::Code { .. } => view! {
                        <label>"Code from your authenticator (or a recovery code)"
                            <input type="text" name="code" inputmode="numeric" autocomplete="one-time-code" required
                                prop:value=move || code.get()
                                on:input=move |ev| code.set(event_target_value(&ev))/>
                        </label>
                    }.into_any(),
                    Step::NewPassword { .. } => view! {
                        <p>"Your password was a one-time one. Choose your own (at least 12 characters)."</p>
                        <label>"New password"
                            <input type="password" name="new_password" autocomplete="new-password" required minlength="12"
                                prop:value=move || new_password.get()
                                on:input=move |ev| new_password.set(event_target_value(&ev))/>
                        </label>
                    }.into_any(),
                }}
                <button type="submit" class="button primary" disabled=move || busy.get()>
                    {move || match step.get() {
                        Step::Password => "Sign in",
                        Step::Code { .. } => "Verify",
                        Step::NewPassword { .. } => "Set password",
                    }}
                </button>
                {move || error.get().map(|message| view! { <p class="note error" role="alert">{message}</p> })}
            </form>
        </section>
    }
}

/// The start page, or the Account page of an account that must first enrol a second
/// factor (until it does, that is all it may do).
fn go_home(enrol_first: bool) {
    api::go_to(if enrol_first { "/account" } else { "/" });
}

/// Ends the browser's session and returns to the sign-in page.
#[component]
pub fn SignOut() -> impl IntoView {
    let sign_out = move |_| {
        spawn_local(async move {
            let _ = api::act(Method::Post, "/api/v1/auth/browser/logout", None).await;
            api::go_to("/login");
        });
    };
    view! { <button type="button" class="button ghost" on:click=sign_out>"Sign out"</button> }
}
