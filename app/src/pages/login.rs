//! The sign-in page of token mode: a plain HTML form posting the API token to the server's
//! `POST /login`, which sets the session cookie and sends the person on to `next`. It works
//! without JavaScript, as it must: before signing in, nothing else on the site is reachable.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::query_signal;

#[component]
pub fn LoginPage() -> impl IntoView {
    let (next, _) = query_signal::<String>("next");
    let (error, _) = query_signal::<String>("error");
    view! {
        <Title text="Sign in"/>
        <form class="form card narrow" method="post" action="/login">
            <h1>"Sign in"</h1>
            <p class="hint">"This Sneakpeek requires its API token. Ask the person who runs it."</p>
            <div class="field" class:invalid=move || error.get().is_some()>
                <label for="token">"API token"</label>
                <input id="token" name="token" type="password" required autocomplete="current-password" autofocus
                    data-testid="login-token" aria-describedby="token-error"/>
                <p class="field-error" id="token-error" role="alert" data-testid="login-error">
                    {move || error.get().map(|_| "That token is not valid; check it and try again.")}
                </p>
            </div>
            <input type="hidden" name="next" value=move || next.get().unwrap_or_else(|| "/".to_owned())/>
            <div class="form-actions">
                <button type="submit" class="button primary" data-testid="login-submit">"Sign in"</button>
            </div>
        </form>
    }
}
