//! The scraper's retry policy in the form: the server's default, or its own (attempts,
//! backoff, which failures are retried), with the delays it means.

use engine::retry::{Backoff, RetryPolicy, RetryReason};
use leptos::prelude::*;

use super::fields::{Field, ServerErrors};
use crate::components::ChoiceSelect;
use crate::time::span;

/// The policy's fields as typed, and the policy they stand for.
#[derive(Clone, Copy)]
pub struct RetryDraft {
    /// Whether the scraper has a policy of its own; without one, the server's default applies.
    pub own: RwSignal<bool>,
    pub max_attempts: RwSignal<String>,
    pub backoff: RwSignal<Backoff>,
    pub delay: RwSignal<String>,
    pub max_delay: RwSignal<String>,
    pub jitter: RwSignal<String>,
    pub retry_on: RwSignal<Vec<RetryReason>>,
    /// The scraper's policy (`None`: the server's default), or what is wrong with the fields.
    pub policy: Memo<Result<Option<RetryPolicy>, String>>,
}

impl RetryDraft {
    /// The fields of `policy`, the scraper's own; when it has none they start from the server's
    /// `default`, ready to be changed.
    pub fn new(policy: Option<&RetryPolicy>, default: &RetryPolicy) -> Self {
        let own = RwSignal::new(policy.is_some());
        let start = policy.unwrap_or(default);
        let max_attempts = RwSignal::new(start.max_attempts.to_string());
        let backoff = RwSignal::new(start.backoff);
        let delay = RwSignal::new(start.delay_seconds.to_string());
        let max_delay = RwSignal::new(start.max_delay_seconds.to_string());
        let jitter = RwSignal::new(start.jitter_percent.to_string());
        let retry_on = RwSignal::new(start.retry_on.clone());
        let policy = Memo::new(move |_| {
            if !own.get() {
                return Ok(None);
            }
            let policy = RetryPolicy {
                max_attempts: whole(&max_attempts.get(), "Attempts")?,
                backoff: backoff.get(),
                delay_seconds: whole(&delay.get(), "First delay")?,
                max_delay_seconds: whole(&max_delay.get(), "Longest delay")?,
                jitter_percent: whole(&jitter.get(), "Jitter")?,
                retry_on: retry_on.get(),
            };
            match policy.problems(&[]).first() {
                Some(problem) => Err(format!("{}: {}", problem.loc.join("."), problem.msg)),
                None => Ok(Some(policy)),
            }
        });
        RetryDraft {
            own,
            max_attempts,
            backoff,
            delay,
            max_delay,
            jitter,
            retry_on,
            policy,
        }
    }
}

/// A whole number typed into the field called `label`.
fn whole<T: std::str::FromStr>(text: &str, label: &str) -> Result<T, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{label}: a whole number"))
}

/// When the attempts after the first start, in words: "1 min 00 s, 2 min 00 s".
fn delays(policy: &RetryPolicy) -> String {
    (1..policy.max_attempts)
        .map(|attempt| span(policy.delay_after(attempt, 0.0)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a policy does, in a sentence.
fn describe(policy: &RetryPolicy) -> String {
    if policy.max_attempts <= 1 || policy.retry_on.is_empty() {
        return "Failed jobs are not retried.".to_owned();
    }
    let reasons: Vec<&str> = policy
        .retry_on
        .iter()
        .map(|reason| reason.label())
        .collect();
    let jitter = match policy.jitter_percent {
        0 => String::new(),
        percent => format!(" (each up to {percent} % shorter)"),
    };
    format!(
        "On {}: {} attempts in all, retried after {}{jitter}.",
        reasons.join(", "),
        policy.max_attempts,
        delays(policy)
    )
}

/// The retry section of the form.
#[component]
pub fn RetryFields(retry: RetryDraft, errors: ServerErrors, default: RetryPolicy) -> impl IntoView {
    let RetryDraft {
        own,
        max_attempts,
        backoff,
        delay,
        max_delay,
        jitter,
        retry_on,
        policy,
    } = retry;
    let summary = move || match policy.get() {
        Ok(Some(policy)) => describe(&policy),
        Ok(None) => format!("Server default. {}", describe(&default)),
        Err(problem) => problem,
    };
    let number = move |id: &'static str,
                       label: &'static str,
                       field: &'static str,
                       value: RwSignal<String>| {
        view! {
            <Field id label error=Signal::derive(move || errors.of(field))>
                <input id=id type="text" inputmode="numeric" data-testid=id
                    prop:value=move || value.get()
                    on:input=move |event| { value.set(event_target_value(&event)); errors.clear(field); }/>
            </Field>
        }
    };
    view! {
        <section class="retry" aria-labelledby="retry-heading" data-testid="retry-fields">
            <h3 id="retry-heading">"Retries"</h3>
            <label class="checkbox">
                <input type="checkbox" data-testid="retry-own" prop:checked=move || own.get()
                    on:change=move |event| own.set(event_target_checked(&event))/>
                " Own retry policy (else the server's default)"
            </label>
            <Show when=move || own.get()>
                <div class="fields">
                    {number("retry-max-attempts", "Attempts in all", "max_attempts", max_attempts)}
                    <Field id="retry-backoff" label="Backoff" error=Signal::derive(|| None)>
                        <ChoiceSelect id="retry-backoff" test_id="retry-backoff" options=vec![Backoff::Exponential, Backoff::Fixed] value=backoff/>
                    </Field>
                    {number("retry-delay", "First delay in seconds", "delay_seconds", delay)}
                    {number("retry-max-delay", "Longest delay in seconds", "max_delay_seconds", max_delay)}
                    {number("retry-jitter", "Jitter in percent", "jitter_percent", jitter)}
                </div>
                <fieldset class="reasons">
                    <legend>"Retry when"</legend>
                    {RetryReason::ALL.into_iter().map(|reason| view! {
                        <label class="checkbox">
                            <input type="checkbox" data-testid=format!("retry-on-{}", reason.as_str())
                                prop:checked=move || retry_on.with(|reasons| reasons.contains(&reason))
                                on:change=move |event| {
                                    let checked = event_target_checked(&event);
                                    retry_on.update(|reasons| {
                                        reasons.retain(|listed| *listed != reason);
                                        if checked {
                                            reasons.push(reason);
                                            reasons.sort();
                                        }
                                    });
                                }/>
                            " " {reason.label()}
                        </label>
                    }).collect_view()}
                </fieldset>
            </Show>
            <p class="hint" class:field-error=move || policy.with(Result::is_err) data-testid="retry-summary" aria-live="polite">{summary}</p>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_lists_every_delay_and_the_jitter() {
        let policy = RetryPolicy {
            max_attempts: 4,
            backoff: Backoff::Exponential,
            delay_seconds: 30,
            max_delay_seconds: 90,
            jitter_percent: 10,
            retry_on: vec![RetryReason::Dead, RetryReason::HttpStatus],
        };
        assert_eq!(
            describe(&policy),
            "On worker lost, HTTP 429 or 5xx: 4 attempts in all, retried after 30.0 s, 1 min 00 s, 1 min 30 s (each up to 10 % shorter)."
        );
        assert_eq!(
            describe(&RetryPolicy::never()),
            "Failed jobs are not retried."
        );
    }
}
